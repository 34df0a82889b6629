"""The public side in German, French and Spanish in a real Chromium at 375 px, emails through moto's SES.

Each language: the form, its errors, the thank-you page, the confirmation email, the confirm page and the
manage page are in that language, <html lang> says so, axe-core finds no violation, nothing overflows
sideways (the longest translations included), and a screenshot of each is in test-output/.
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone, translation
from django.utils.formats import date_format

from tests.conftest import OUTPUT
from tests.users.mail import link_in, mail_to
from users import consent
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser, pytest.mark.slow]

WIDTH = 375
AXE = Axe()
TEXT = {
    "en": {"name": "Full name", "email": "Email address", "country": "Country (optional)",
           "consent": "Yes, you may contact me", "submit": "Sign up", "name_error": "Please tell us your name.",
           "consent_error": "Please tick the box: we can only sign you up if we may email you.",
           "thanks": "Thank you, {}", "subject": "Please confirm your address", "hello": "Hello,",
           "confirm_h1": "Confirm your address", "confirm": "Confirm",
           "confirmed": "Thank you: your address is confirmed.", "manage_h1": "Your data",
           "withdraw": "Withdraw my consent", "privacy_h1": "Privacy", "given": "given "},
    "de": {"name": "Vollständiger Name", "email": "E-Mail-Adresse", "country": "Land (optional)",
           "consent": "Ja, Sie dürfen mich", "submit": "Anmelden", "name_error": "Bitte geben Sie Ihren Namen an.",
           "thanks": "Vielen Dank, {}", "subject": "Bitte bestätigen Sie Ihre Adresse", "hello": "Guten Tag,",
           "consent_error": "Bitte setzen Sie das Häkchen: Wir können Sie nur anmelden, wenn wir Ihnen E-Mails "
                            "schreiben dürfen.", "given": "erteilt am ",
           "confirm_h1": "Bestätigen Sie Ihre Adresse", "confirm": "Bestätigen",
           "confirmed": "Vielen Dank: Ihre Adresse ist bestätigt.", "manage_h1": "Ihre Daten",
           "withdraw": "Meine Einwilligung widerrufen", "privacy_h1": "Datenschutz"},
    "fr": {"name": "Nom complet", "email": "Adresse e-mail", "country": "Pays (facultatif)",
           "consent": "Oui, vous pouvez me contacter", "submit": "S\u2019inscrire",
           "name_error": "Veuillez indiquer votre nom.", "thanks": "Merci, {}",
           "subject": "Veuillez confirmer votre adresse", "hello": "Bonjour,", "given": "donné le ",
           "consent_error": "Veuillez cocher la case\u00a0: nous ne pouvons vous inscrire que si nous pouvons "
                            "vous écrire par e-mail.",
           "confirm_h1": "Confirmez votre adresse", "confirm": "Confirmer",
           "confirmed": "Merci\u00a0: votre adresse est confirmée.", "manage_h1": "Vos données",
           "withdraw": "Retirer mon consentement", "privacy_h1": "Confidentialité"},
    "es": {"name": "Nombre completo", "email": "Correo electrónico", "country": "País (opcional)",
           "consent": "Sí, pueden ponerse en contacto", "submit": "Suscribirse",
           "name_error": "Indíquenos su nombre, por favor.", "thanks": "Gracias, {}",
           "subject": "Confirme su dirección, por favor", "hello": "Hola:", "given": "dado el ",
           "consent_error": "Marque la casilla: solo podemos inscribirle si podemos escribirle por correo "
                            "electrónico.",
           "confirm_h1": "Confirme su dirección", "confirm": "Confirmar",
           "confirmed": "Gracias: su dirección está confirmada.", "manage_h1": "Sus datos",
           "withdraw": "Retirar mi consentimiento", "privacy_h1": "Privacidad"},
}  # fmt: skip
PEOPLE = {
    "en": "Ada Lovelace-Byron",
    "de": "Jürgen Weißmüller-Schönberger",
    "fr": "Élodie Lefèvre-Dubois",
    "es": "María José Núñez",
}


def _check(page, language: str, name: str) -> None:
    """The page is in `language`, accessible and fits the phone; keep a screenshot."""
    page.screenshot(path=OUTPUT / f"i18n-{language}-{name}.png", full_page=True)
    assert page.get_attribute("html", "lang") == language
    names = page.locator("#languages [lang]").all_inner_texts()
    assert names == ["English", "Deutsch", "Français", "Español"]  # each in its own language, whatever the page's
    results = AXE.run(page)
    assert results.violations_count == 0, f"{language} {name}:\n{results.generate_report()}"
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, f"{language} {name} overflows"


@pytest.fixture
def phone(browser):
    contexts = []

    def open_page(language: str, *, javascript: bool = True):
        context = browser.new_context(viewport={"width": WIDTH, "height": 740}, locale=language,
                                      extra_http_headers={"Accept-Language": language},
                                      java_script_enabled=javascript)  # fmt: skip
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_a_visitor_signs_up_confirms_and_manages_in_their_language(phone, app_server, ses, worker, language):
    OUTPUT.mkdir(exist_ok=True)
    text, person, address = TEXT[language], PEOPLE[language], f"person-{language}@example.com"
    page = phone(language)
    page.goto(f"{app_server.url}/signup/")
    _check(page, language, "form")
    page.get_by_role("button", name=text["submit"], exact=True).click()  # nothing filled in
    assert page.locator("#id_full_name_error").inner_text() == text["name_error"]
    _check(page, language, "errors")
    page.get_by_label(text["name"], exact=True).fill(person)
    page.get_by_label(text["email"], exact=True).fill(address)
    page.get_by_label(text["country"], exact=True).select_option("CH")
    page.get_by_role("button", name=text["submit"], exact=True).click()  # consent not given: not signed up
    assert page.locator("#id_consent_error").inner_text() == text["consent_error"]
    assert not Signup.objects.using("default").filter(email=address).exists()
    box = page.get_by_label(text["consent"]).bounding_box()
    assert box["width"] >= 24 and box["height"] >= 24, box  # a tap target on a phone, not a sliver
    _check(page, language, "consent-error")
    page.get_by_label(text["consent"]).check()
    page.get_by_role("button", name=text["submit"], exact=True).click()
    page.wait_for_url("**/signup/thanks/")
    assert page.get_by_role("heading", level=1).inner_text() == text["thanks"].format(person)
    _check(page, language, "thanks")
    row = Signup.objects.using("default").get(email=address)
    assert row.language == language and row.consent_version == consent.version(language)
    # The confirmation email, through SES, in that language; its link opens the confirm page in it.
    message = mail_to(ses, address, text["subject"])
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert plain.startswith(text["hello"] + "\n") and person not in plain  # no stranger's text in our email
    page.goto(link_in(message, "/signup/confirm/"))
    assert page.get_by_role("heading", level=1).inner_text() == text["confirm_h1"]
    _check(page, language, "confirm")
    page.get_by_role("button", name=text["confirm"], exact=True).click()
    page.wait_for_url("**/my-data/**")
    assert page.get_by_role("status").inner_text() == text["confirmed"]
    assert page.get_by_role("heading", level=1).inner_text() == text["manage_h1"]
    assert page.get_by_test_id("wording").inner_text() == consent.wording(row.consent_version)
    given = page.get_by_test_id("consent").inner_text()
    with translation.override(language):  # the locale's own date format ("6. Dezember 2026 17:13"), not "6 Dez"
        when = date_format(Signup.objects.using("default").get(pk=row.pk).consent_at, "DATETIME_FORMAT")
    assert given.startswith(f"{text['given']}{when} UTC"), given
    assert "2026-11-v1" not in page.content()  # no internal wording id on the person's page
    assert page.get_by_role("button", name=text["withdraw"]).is_visible()
    _check(page, language, "manage")
    page.goto(f"{app_server.url}/privacy/")
    assert page.get_by_role("heading", level=1).inner_text() == text["privacy_h1"]
    _check(page, language, "privacy")
    for path, name in (("/my-data/", "send-link"), ("/no-such-page/", "404")):
        page.goto(f"{app_server.url}{path}")
        _check(page, language, name)


def test_a_german_signup_gets_german_email_when_someone_else_asks_later(phone, app_server, ses, worker):
    german = phone("de")
    german.goto(f"{app_server.url}/signup/")
    german.get_by_label("Vollständiger Name").fill("Lieselotte Bräuer")
    german.get_by_label("E-Mail-Adresse").fill("lotte@example.com")
    german.get_by_label("Ja, Sie dürfen mich").check()
    german.get_by_role("button", name="Anmelden", exact=True).click()
    german.wait_for_url("**/signup/thanks/")
    mail_to(ses, "lotte@example.com", "Bitte bestätigen Sie Ihre Adresse")
    # (confirmed: an unconfirmed person who asks for a link gets the confirmation again, its old link revoked)
    Signup.objects.using("default").filter(email="lotte@example.com").update(confirmed_at=timezone.now())
    # Weeks later somebody browsing in English asks for her manage link: the email is still German.
    english = phone("en")
    english.goto(f"{app_server.url}/my-data/")
    assert english.get_attribute("html", "lang") == "en"
    english.get_by_label("Your email address").fill("lotte@example.com")
    english.get_by_role("button", name="Email me my link").click()
    english.wait_for_url("**/my-data/sent/")
    message = mail_to(ses, "lotte@example.com", "Ihr Link zur Verwaltung Ihrer Daten")
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert body.startswith("Guten Tag,") and "Mit einem Klick abmelden" in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert '<html lang="de">' in html and "Meine Daten verwalten" in html


def test_the_switcher_works_without_javascript_and_keeps_what_was_typed(phone, app_server):
    page = phone("en", javascript=False)
    page.goto(f"{app_server.url}/signup/")
    page.get_by_label("Email address").fill("not an email")
    page.get_by_label("Phone (optional)").fill("+41 44 668 18 00")
    page.get_by_role("button", name="Sign up", exact=True).click()
    assert page.locator("#id_full_name_error").inner_text() == "Please tell us your name."
    page.get_by_role("button", name="Deutsch").click()  # at the foot of the page, part of the form
    assert page.get_attribute("html", "lang") == "de"
    assert page.locator("#id_full_name_error").inner_text() == "Bitte geben Sie Ihren Namen an."
    assert page.get_by_label("E-Mail-Adresse").input_value() == "not an email"
    assert page.get_by_label("Telefon (optional)").input_value() == "+41 44 668 18 00"
    page.screenshot(path=OUTPUT / "i18n-switcher-de-errors.png", full_page=True)
    page.get_by_label("Vollständiger Name").fill("Zoë Müller")
    page.get_by_label("E-Mail-Adresse").fill("zoe@example.com")
    page.get_by_role("button", name="Français").click()
    assert page.get_attribute("html", "lang") == "fr"
    assert page.get_by_label("Nom complet").input_value() == "Zoë Müller"
    page.get_by_label("Oui, vous pouvez me contacter").check()
    page.get_by_role("button", name="S\u2019inscrire", exact=True).click()
    page.wait_for_url("**/signup/thanks/")
    assert page.get_by_role("heading", level=1).inner_text() == "Merci, Zoë Müller"
    assert Signup.objects.using("default").get(email="zoe@example.com").language == "fr"
    # Remembered: the next page is French without asking again; elsewhere the switcher just goes back.
    page.goto(f"{app_server.url}/privacy/")
    assert page.get_attribute("html", "lang") == "fr"
    page.get_by_role("button", name="Español").click()
    page.wait_for_url("**/privacy/")
    assert page.get_attribute("html", "lang") == "es"
