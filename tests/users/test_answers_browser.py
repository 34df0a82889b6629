"""Issue 28 (fields) in a real Chromium, in every language: staff define three fields in the admin (with its
preview); a visitor in each language answers them; the confirmation email's links lead to the person's page
listing their answers in their language; the JSON download and the staff's CSV export hold typed values;
erasure removes them."""

import csv
import io
import json
import time
import urllib.request
from pathlib import Path

import pytest

from formdef import published
from formdef.models import Field
from tests.conftest import OUTPUT
from tests.formdef.fields import fresh_version_ids
from tests.staff.conftest import PASSWORD, make_staff
from tests.users.mail import link_in, mail_to
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser, pytest.mark.slow]

LANGS = ("en", "de", "fr", "es")


def _served(base: str, version: int) -> None:
    """Wait until every worker of the app server renders the form with `version` (each looks once a second)."""
    deadline, seen = time.monotonic() + 15, 0
    while seen < 10 and time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/signup/", timeout=10) as reply:
            page = reply.read().decode()
        seen = seen + 1 if f'name="form_version" value="{version}"' in page else 0
        time.sleep(0.1)
    assert seen == 10, f"the app server does not serve form version {version}"


@pytest.fixture(autouse=True)
def bare_form_afterwards(live_db, app_server):
    """Leave the session's app server serving a form without fields: later tests post no form_version."""
    yield
    Field.objects.all().delete()
    _served(app_server.url, published.publish("tests").pk)


FIELDS = [  # what staff type: key, kind, labels, choices
    ("seats", "number", {"en": "Seats", "de": "Plätze", "fr": "Places", "es": "Plazas"}, ""),
    ("member", "yesno", {"en": "Already a member", "de": "Schon Mitglied", "fr": "Déjà membre", "es": "Ya socio"}, ""),
    ("interests", "multichoice", {"en": "Interests", "de": "Interessen", "fr": "Intérêts", "es": "Intereses"},
     "news | News | Neuigkeiten | Actualités | Noticias\nevents | Events | Termine | Événements | Eventos"),
]  # fmt: skip
YES = {"en": "Yes", "de": "Ja", "fr": "Oui", "es": "Sí"}
EVENTS = {"en": "Events", "de": "Termine", "fr": "Événements", "es": "Eventos"}


def _staff_defines_the_fields(browser, base: str) -> None:
    make_staff()
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(f"{base}/admin/login/?next=/admin/formdef/field/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/formdef/field/")
    for position, (key, kind, labels, choices) in enumerate(FIELDS):
        page.goto(f"{base}/admin/formdef/field/add/")
        page.fill("input[name=key]", key)
        page.select_option("select[name=kind]", kind)
        page.fill("input[name=position]", str(position))
        for lang in LANGS:
            page.fill(f"input[name=label_{lang}]", labels[lang])
        page.fill("textarea[name=choices_text]", choices)
        if key == "interests":
            page.screenshot(path=OUTPUT / "fields-admin-edit.png", full_page=True)
        page.locator("input[name=_save]").click()
        page.wait_for_url("**/admin/formdef/field/")
    page.goto(f"{base}/admin/formdef/field/preview/")
    for lang in LANGS:
        assert FIELDS[2][2][lang] in page.get_by_test_id(f"preview-{lang}").inner_text()
    page.screenshot(path=OUTPUT / "fields-admin-preview.png", full_page=True)
    page.context.close()


def test_staff_define_fields_visitors_answer_in_every_language_and_see_export_and_erase_them(
    browser, app_server, ses, worker
):
    OUTPUT.mkdir(exist_ok=True)
    fresh_version_ids()
    _staff_defines_the_fields(browser, app_server.url)
    assert [f.key for f in Field.objects.order_by("position")] == ["seats", "member", "interests"]
    assert [f["key"] for f in published.current().fields] == ["seats", "member", "interests"]  # published
    _served(app_server.url, published.current().id)
    for n, lang in enumerate(LANGS):
        email = f"visitor-{lang}@example.com"
        context = browser.new_context(viewport={"width": 420, "height": 1000}, locale=lang, accept_downloads=True)
        page = context.new_page()
        page.goto(f"{app_server.url}/signup/")
        assert page.get_attribute("html", "lang") == lang
        page.fill("input[name=full_name]", f"Visitor {lang.upper()}")
        page.fill("input[name=email]", email)
        page.get_by_label(FIELDS[0][2][lang]).fill(str(10 + n))
        page.get_by_role("group", name=FIELDS[1][2][lang]).get_by_label(YES[lang]).check()
        page.get_by_role("group", name=FIELDS[2][2][lang]).get_by_label(EVENTS[lang]).check()
        page.check("input[name=consent]")
        page.screenshot(path=OUTPUT / f"fields-signup-{lang}.png", full_page=True)
        page.locator("#signup-form button[type=submit]").click()
        page.wait_for_url("**/signup/thanks/")
        row = Signup.objects.using("default").get(email=email)
        assert row.answers == {"seats": 10 + n, "member": True, "interests": ["events"]} and row.language == lang
        # The confirmation email's link; confirming opens the person's page: their answers, in their language.
        message = mail_to(ses, email, "")
        page.goto(link_in(message, "/signup/confirm/"))
        page.get_by_test_id("confirm").click()
        page.wait_for_url("**/my-data/**")
        assert page.get_by_test_id("answer-member").inner_text() == YES[lang]
        assert page.get_by_test_id("answer-interests").inner_text() == EVENTS[lang]
        assert FIELDS[0][2][lang] in page.get_by_test_id("held").inner_text()
        page.screenshot(path=OUTPUT / f"fields-manage-{lang}.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_test_id("download").click()
        data = json.loads(Path(download.value.path()).read_text())
        assert data["signup"]["answers"] == {"seats": 10 + n, "member": True, "interests": ["events"]}
        assert {a["key"]: a["label"] for a in data["answers_explained"]}["member"] == FIELDS[1][2][lang]
        context.close()
    # Staff export the list: a typed column per field.
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
    staff.goto(f"{app_server.url}/admin/login/?next=/admin/users/signup/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    staff.wait_for_url("**/admin/users/signup/")
    staff.screenshot(path=OUTPUT / "fields-admin-list.png", full_page=True)
    with staff.expect_download() as download:
        staff.get_by_role("button", name="Export contactable (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert sorted((r["language"], r["answer_seats"], r["answer_member"], r["answer_interests"]) for r in rows) == [
        ("de", "11", "True", "events"), ("en", "10", "True", "events"), ("es", "13", "True", "events"),
        ("fr", "12", "True", "events")]  # fmt: skip
    staff.context.close()
    # Erasure (the person's own button) removes the answers.
    context = browser.new_context(locale="de")
    page = context.new_page()
    page.goto(link_in(mail_to(ses, "visitor-de@example.com", ""), "/my-data/"))
    page.get_by_test_id("erase").click()
    page.get_by_test_id("erase-confirm").click()
    page.wait_for_url("**/my-data/erased/")
    context.close()
    erased = Signup.objects.using("default").get(language="de")  # the language stays: it identifies nobody
    assert erased.answers == {} and erased.is_erased
    assert Signup.objects.using("default").get(email="visitor-fr@example.com").answers["seats"] == 12


def test_a_definition_changed_while_the_form_is_open_is_judged_by_what_was_seen_or_shown_again(browser, app_server):
    from tests.formdef.fields import define, words

    OUTPUT.mkdir(exist_ok=True)
    fresh_version_ids()
    seen = define(["company"])  # required text, at most 40 characters
    _served(app_server.url, seen.id)
    context = browser.new_context(viewport={"width": 420, "height": 900})
    first, second = context.new_page(), context.new_page()
    for page, n in ((first, 1), (second, 2)):
        page.goto(f"{app_server.url}/signup/")
        page.fill("input[name=full_name]", f"Open Form {n}")
        page.fill("input[name=email]", f"open-{n}@example.com")
        page.get_by_label("Company").fill("ACME Ltd")
        page.check("input[name=consent]")
    # Staff tighten the field and add a required question while both forms are open.
    Field.objects.filter(key="company").update(max_length=3)
    Field.objects.create(key="team", kind=Field.TEXT, required=True, label=words("Team"), position=5)
    newer = published.publish("staff")
    # The first visitor's form is judged by the version it showed: stored, as they answered it.
    first.locator("#signup-form button[type=submit]").click()
    first.wait_for_url("**/signup/thanks/")
    row = Signup.objects.using("default").get(email="open-1@example.com")
    assert row.form_version == seen.id and row.answers == {"company": "ACME Ltd"}
    # The second names a version this server does not know (as after a restore): shown again, nothing stored.
    second.evaluate("document.querySelector('input[name=form_version]').value = '999999'")
    second.locator("#signup-form button[type=submit]").click()
    assert "This form changed while you had it open" in second.get_by_role("alert").inner_text()
    assert second.get_by_label("Full name").input_value() == "Open Form 2"  # what they typed is kept
    assert not Signup.objects.using("default").filter(email="open-2@example.com").exists()
    second.screenshot(path=OUTPUT / "fields-form-changed.png", full_page=True)
    second.get_by_label("Company").fill("ACM")
    second.get_by_label("Team").fill("Ops")
    second.check("input[name=consent]")
    second.locator("#signup-form button[type=submit]").click()
    second.wait_for_url("**/signup/thanks/")
    row = Signup.objects.using("default").get(email="open-2@example.com")
    assert row.form_version == newer.pk and row.answers == {"company": "ACM", "team": "Ops"}
    context.close()
