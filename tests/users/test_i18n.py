"""The public side in the visitor's language: choice, switcher, the signup's language, emails, consent wording."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from tests.users.mail import VALID, link, run_queue, sign_up
from users import consent, emails
from users.models import ConsentEvent, Signup

pytestmark = pytest.mark.usefixtures("live_db")

H1 = {"en": "Sign up", "de": "Anmelden", "fr": "S\u2019inscrire", "es": "Suscribirse"}
NAME_REQUIRED = {"de": "Bitte geben Sie Ihren Namen an.", "fr": "Veuillez indiquer votre nom.",
                 "es": "Indíquenos su nombre, por favor."}  # fmt: skip
CONFIRM_SUBJECT = {"de": "Bitte bestätigen Sie Ihre Adresse", "fr": "Veuillez confirmer votre adresse",
                   "es": "Confirme su dirección, por favor", "en": "Please confirm your address"}  # fmt: skip


def _h1(response) -> str:
    return re.search(r"<h1>(.*?)</h1>", response.content.decode()).group(1)


def _lang(response) -> str:
    return re.search(r'<html lang="([\w-]+)"', response.content.decode()).group(1)


def _errors(response) -> list[str]:
    return re.findall(r'<p class="error"[^>]*>(.*?)</p>', response.content.decode())


def _row(email: str = "ada@example.com") -> Signup:
    return Signup.objects.using("default").get(email=email)


@pytest.mark.parametrize("language", ["de", "fr", "es", "en"])
def test_accept_language_picks_the_language_of_the_page(client, language):
    response = client.get("/signup/", HTTP_ACCEPT_LANGUAGE=f"{language};q=0.9, ja;q=0.5")
    assert response.status_code == 200
    assert _lang(response) == language and response["Content-Language"] == language
    assert _h1(response) == H1[language]
    assert {"Accept-Language", "Cookie"} <= {v.strip() for v in response["Vary"].split(",")}  # no cache mixes them


def test_a_language_we_do_not_ship_falls_back_to_english(client):
    response = client.get("/signup/", HTTP_ACCEPT_LANGUAGE="ja, zh;q=0.8")
    assert _lang(response) == "en" and _h1(response) == "Sign up"


def test_the_regional_variant_finds_its_language(client):
    assert _lang(client.get("/signup/", HTTP_ACCEPT_LANGUAGE="es-MX")) == "es"


def test_the_switchers_cookie_beats_accept_language(client):
    response = client.post("/language/", {"language": "fr", "next": "/privacy/"}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 302 and response["Location"] == "/privacy/"
    cookie = response.cookies["language"]
    assert cookie.value == "fr" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert _lang(client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="de")) == "fr"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""])
def test_the_switcher_only_goes_back_to_this_site(client, target):
    response = client.post("/language/", {"language": "de", "next": target})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_switcher_refuses_a_language_we_do_not_ship(client):
    assert client.post("/language/", {"language": "xx", "next": "/"}).status_code == 400
    assert client.get("/language/").status_code == 405  # a GET changes nothing


def test_staff_pages_stay_english(client):
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="de")
    assert _lang(page) == "en" and "Log in" in page.content.decode()


def test_errors_are_in_the_language_ours_and_djangos(client):
    long_email = "a" * 250 + "@example.com"  # Django's own MaxLengthValidator message
    response = client.post("/signup/", {**VALID, "full_name": "", "email": long_email}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 400
    errors = _errors(response)
    assert NAME_REQUIRED["de"] in errors
    assert any("höchstens 254 Zeichen" in e for e in errors), errors
    assert "Bitte korrigieren Sie die folgenden 2 Fehler." in response.content.decode()


def test_the_switcher_keeps_what_was_typed_and_translates_the_errors(client):
    typed = {**VALID, "full_name": "", "email": "not-an-email", "phone": "+44 20 7946 0958"}
    shown = client.post("/signup/", typed, HTTP_ACCEPT_LANGUAGE="en")
    assert shown.status_code == 400 and "Please tell us your name." in _errors(shown)
    # The switcher's buttons submit the form itself to /language/ (formaction), with its hidden fields.
    assert 'formaction="/language/"' in shown.content.decode() and 'name="shown_errors"' in shown.content.decode()
    again = client.post("/language/", {**typed, "language": "es", "next": "/signup/", "shown_errors": "1"})
    body = again.content.decode()
    assert _lang(again) == "es" and NAME_REQUIRED["es"] in _errors(again)
    assert 'value="not-an-email"' in body and 'value="+44 20 7946 0958"' in body
    assert not Signup.objects.using("default").exists()  # switching saves nothing


def test_the_switcher_on_a_form_without_errors_shows_no_errors(client):
    again = client.post("/language/", {"language": "de", "next": "/signup/", "full_name": "Zoë", "email": ""})
    assert again.status_code == 200 and _errors(again) == [] and 'value="Zoë"' in again.content.decode()


def test_the_signup_records_its_language_and_the_exact_wording_in_it(client):
    sign_up(client, language="de")
    row = _row()
    assert row.language == "de"
    assert row.consent_version == consent.version("de") != consent.version("en")
    assert consent.wording(row.consent_version).startswith("Ja, Sie dürfen mich")
    given = row.events.get(kind=ConsentEvent.GIVEN)
    assert given.wording_version == row.consent_version


def test_a_wording_version_names_one_text():
    versions = {consent.version(code) for code in ("en", "de", "fr", "es")}
    assert len(versions) == 4
    assert consent.wording(consent.version("fr")).startswith("Oui, vous pouvez")
    tampered = consent.version("fr")[:-1] + ("0" if consent.version("fr")[-1] != "0" else "1")
    assert consent.wording(tampered) is None  # the text has changed since: not claimed
    assert consent.wording(consent.CONSENT_VERSION).startswith("Yes, you may")  # before languages: English


def test_every_email_is_in_the_persons_language_whoever_triggers_it(client):
    sign_up(client, language="de")
    run_queue()
    (confirm,) = mail.outbox
    assert confirm.subject.endswith(CONFIRM_SUBJECT["de"]) and confirm.body.startswith("Guten Tag,\n")
    assert "Ada Lovelace" not in confirm.body + confirm.alternatives[0][0]  # no stranger's text in our emails
    assert "Meine Adresse bestätigen" in confirm.alternatives[0][0] and '<html lang="de">' in confirm.alternatives[0][0]
    # Later, an English visitor signs up with the same address and asks for the manage link: German again.
    Signup.objects.update(confirmed_at=timezone.now())  # (unconfirmed, "send me my link" sends the confirmation)
    english = Client()
    sign_up(english, language="en", ip="198.51.100.77")
    english.post("/my-data/", {"email": "ada@example.com"}, HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="198.51.100.78")
    with translation.override("fr"):  # whatever language the sending process happens to be in
        run_queue()
    subjects = sorted(m.subject for m in mail.outbox[1:])
    assert subjects == ["Signups: Ihr Link zur Verwaltung Ihrer Daten", "Signups: Sie sind bereits angemeldet"]
    assert all("Guten Tag," in m.body and "Mit einem Klick abmelden" in m.body for m in mail.outbox[1:])


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_emails_render_in_each_language(language):
    row = Signup.objects.create(full_name="Zoë", email=f"z-{language}@example.com", language=language)
    for kind in emails.KINDS:
        message = emails.build(row, kind)
        html = message.alternatives[0][0]
        assert f'<html lang="{language}">' in html
        if kind == emails.CONFIRM:
            assert message.subject.endswith(CONFIRM_SUBJECT[language])


def test_the_manage_page_shows_the_words_agreed_to_in_their_language(client):
    sign_up(client, language="fr")
    run_queue()
    manage = Client().get(link(mail.outbox[0], "/my-data/"), HTTP_ACCEPT_LANGUAGE="en", follow=True)  # exchanged
    body = manage.content.decode()
    assert _lang(manage) == "en"  # the page follows the visitor
    assert '<blockquote class="wording" data-testid="wording" lang="fr">Oui, vous pouvez me contacter' in body
    assert consent.version("fr") not in body and "Français" in body  # the words, not our internal version id


@pytest.mark.parametrize("path", ["/", "/privacy/", "/my-data/", "/my-data/sent/", "/no-such-page/"])
def test_every_public_page_answers_in_german(client, path):
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code in (200, 404) and _lang(response) == "de"
    assert "Datenschutz" in response.content.decode()  # the footer's link, at least


def test_a_language_without_its_catalogue_is_a_system_check_warning(settings):
    from users.checks import check_languages

    settings.LANGUAGES = [("en", "English"), ("it", "italiano")]
    assert [w.id for w in check_languages(None)] == ["users.W004"]
    settings.LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "français"), ("es", "español")]
    assert check_languages(None) == []


def test_languages_come_from_the_environment_and_a_bad_code_stops_start_up(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from project.env import env_languages

    monkeypatch.setenv("LANGUAGES", "en, DE")
    assert env_languages("LANGUAGES", ["en"]) == [("en", "English"), ("de", "Deutsch")]
    monkeypatch.setenv("LANGUAGES", "en,klingon")
    with pytest.raises(ImproperlyConfigured, match="LANGUAGES"):
        env_languages("LANGUAGES", ["en"])


def test_the_switcher_keeps_the_address_typed_on_the_send_link_page(client):
    shown = client.post("/my-data/", {"email": "not-an-email"}, HTTP_ACCEPT_LANGUAGE="en")
    assert shown.status_code == 400 and 'form="link-form"' in shown.content.decode()
    again = client.post("/language/", {"language": "fr", "next": "/my-data/", "email": "not-an-email",
                                       "shown_errors": "1"})  # fmt: skip
    assert _lang(again) == "fr" and 'value="not-an-email"' in again.content.decode()
    assert _errors(again) == ["Saisissez une adresse e-mail valide, par exemple nom@example.com."]
    assert mail.outbox == [] and run_queue()["done"] == 0  # nothing was sent


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_ACCEPT_LANGUAGE": "de;q=0.5," * 5000}, {"HTTP_ACCEPT_LANGUAGE": "\x00\xff;q=abc"},
     {"HTTP_COOKIE": "language=../../etc/passwd"}, {"HTTP_COOKIE": "language=de-xx-" + "a" * 500}],
)  # fmt: skip
def test_hostile_language_headers_get_a_page_not_an_error(client, headers):
    response = client.get("/signup/", **headers)
    assert response.status_code == 200 and _lang(response) in {"en", "de"}
