"""Issue 28's acceptance, both halves at once, in a real Chromium in each language: a staff member defines the
fields half's three fields (a number, a yes/no, a multiple choice; and a date, so that every typed kind the
exports must show is answered) and two topics in the admin; a visitor fills them in; the confirmation (read back
from moto's SES, sent by a real worker) covers both topics; the preference centre switches one off; the exports
(CSV, and XLSX of one topic's members) and the JSON download show typed values; erasure removes the answers and
the memberships.

The staff steps and the app-server waits are the two halves' own (test_answers_browser, test_topics_browser).
"""

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from formdef import published
from tests.conftest import OUTPUT
from tests.formdef.fields import fresh_version_ids
from tests.staff.conftest import PASSWORD
from tests.users.mail import link_in, mail_to, text_of
from tests.users.test_answers_browser import (
    EVENTS,
    FIELDS,
    YES,
    _served,
    _staff_defines_the_fields,
    bare_form_afterwards,  # noqa: F401 - autouse: leave a bare form
)
from tests.users.test_topics_browser import NAMES, _define_topics
from users.models import Signup, SignupTopic

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser, pytest.mark.slow]

LANGS = ("en", "de", "fr", "es")
EPOCH = dt.date(1899, 12, 30)  # a spreadsheet's day 0
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
# The fields half's three (a number, a yes/no, a multiple choice) and, so that a date is among them, a date.
VISIT = {"en": "Visit on", "de": "Besuch am", "fr": "Visite le", "es": "Visita el"}
ANSWERED = {lang: {"seats": 20 + n, "member": True, "interests": ["events"], "visit": f"2027-03-{14 + n}"}
            for n, lang in enumerate(LANGS)}  # fmt: skip


def _shot(page, name: str) -> None:
    page.screenshot(path=OUTPUT / f"form-{name}.png", full_page=True)


def _visitor_signs_up(page, base: str, lang: str) -> None:
    page.goto(f"{base}/signup/")
    assert page.get_attribute("html", "lang") == lang
    page.fill("input[name=full_name]", f"Visitor {lang.upper()}")
    page.fill("input[name=email]", f"form-{lang}@example.com")
    page.get_by_label(FIELDS[0][2][lang]).fill(str(ANSWERED[lang]["seats"]))
    page.get_by_role("group", name=FIELDS[1][2][lang]).get_by_label(YES[lang]).check()
    page.get_by_role("group", name=FIELDS[2][2][lang]).get_by_label(EVENTS[lang]).check()
    page.get_by_label(VISIT[lang]).fill(ANSWERED[lang]["visit"])  # an <input type=date> takes ISO
    page.check("input[name=topics][value=news]")
    page.check("input[name=topics][value=events]")
    page.check("input[name=consent]")
    _shot(page, f"signup-{lang}")
    page.locator("#signup-form button[type=submit]").click()
    page.wait_for_url("**/signup/thanks/")


def _confirms_and_leaves_events(page, ses, lang: str) -> None:
    message = mail_to(ses, f"form-{lang}@example.com", "")
    text = text_of(message)
    assert NAMES["news"][lang] in text and NAMES["events"][lang] in text  # one email, both topics, their words
    page.goto(link_in(message, "/signup/confirm/"))
    page.get_by_test_id("confirm").click()
    page.wait_for_url("**/my-data/manage/**")
    assert NAMES["events"][lang] in page.get_by_test_id("preferences").inner_text()
    assert page.get_by_test_id("answer-member").inner_text() == YES[lang]
    page.uncheck("input[name=topics][value=events]")
    page.get_by_test_id("save-topics").click()
    page.wait_for_url("**?topics=1")
    assert not page.locator("input[name=topics][value=events]").is_checked()
    assert page.locator("input[name=topics][value=news]").is_checked()
    _shot(page, f"preferences-{lang}")


def _json_download(page, lang: str) -> None:
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    data = json.loads(Path(download.value.path()).read_text())
    assert data["signup"]["answers"] == ANSWERED[lang]  # a number, a boolean, a list, an ISO date: typed
    assert {a["key"]: a["label"] for a in data["answers_explained"]}["member"] == FIELDS[1][2][lang]
    topics = {t["key"]: t for t in data["topics"]}
    assert topics["news"]["withdrawn_at"] is None and topics["news"]["confirmed_at"].startswith("20")
    assert dt.datetime.fromisoformat(topics["events"]["withdrawn_at"]).year >= 2024  # a date, as ISO text
    assert topics["news"]["wording_version"].startswith(f"news:{lang}:")


def _staff_page(browser, base: str, path: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
    page.goto(f"{base}/admin/login/?next={path}")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")
    return page


def _staff_adds_a_date_field(browser, base: str) -> None:
    page = _staff_page(browser, base, "/admin/formdef/field/add/")
    page.fill("input[name=key]", "visit")
    page.select_option("select[name=kind]", "date")
    page.fill("input[name=position]", str(len(FIELDS)))
    for lang in LANGS:
        page.fill(f"input[name=label_{lang}]", VISIT[lang])
    page.locator("input[name=_save]").click()
    page.wait_for_url("**/admin/formdef/field/")
    page.context.close()


def _download(page, button: str) -> bytes:
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    return Path(download.value.path()).read_bytes()


def _xlsx_rows(body: bytes) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))  # noqa: S314 - our own file
    header, *rows = [row.findall("m:c", NS) for row in sheet.find("m:sheetData", NS)]
    names = [c.find("m:is/m:t", NS).text for c in header]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _exports_are_typed(browser, base: str) -> None:
    staff = _staff_page(browser, base, "/admin/users/signup/")
    rows = list(csv.DictReader(io.StringIO(_download(staff, "Export contactable (CSV)").decode("utf-8-sig"))))
    assert sorted((r["language"], r["answer_seats"], r["answer_member"], r["answer_interests"], r["answer_visit"])
                  for r in rows) == [("de", "21", "True", "events", "2027-03-15"), ("en", "20", "True", "events",
                  "2027-03-14"), ("es", "23", "True", "events", "2027-03-17"), ("fr", "22", "True", "events",
                  "2027-03-16")]  # fmt: skip
    # One topic's members as a spreadsheet: typed cells; "events" was left by everyone, so it exports nobody.
    staff.goto(f"{base}/admin/users/signup/?topic=news")
    _shot(staff, "admin-list-news")
    cells = _xlsx_rows(_download(staff, "Export contactable (XLSX)"))
    assert len(cells) == 4 and all("/unsubscribe/" in c["unsubscribe_url"].find("m:is/m:t", NS).text for c in cells)
    for cell in cells:
        lang = cell["language"].find("m:is/m:t", NS).text
        assert cell["answer_seats"].get("t") is None  # a number cell
        assert cell["answer_seats"].find("m:v", NS).text == str(ANSWERED[lang]["seats"])
        assert cell["answer_member"].get("t") == "b" and cell["answer_member"].find("m:v", NS).text == "1"
        assert cell["answer_interests"].find("m:is/m:t", NS).text == "events"
        visit = cell["answer_visit"]  # a date cell without a time: the day's number, a date style
        assert visit.get("t") is None and visit.get("s") == "4"
        assert int(visit.find("m:v", NS).text) == (dt.date.fromisoformat(ANSWERED[lang]["visit"]) - EPOCH).days
        confirmed = cell["confirmed_at (UTC)"]  # a date cell: days since 1899-12-30
        day = EPOCH + dt.timedelta(days=float(confirmed.find("m:v", NS).text))
        assert confirmed.get("t") is None and abs(day - dt.datetime.now(dt.UTC).date()).days <= 1
    staff.goto(f"{base}/admin/users/signup/?topic=events")
    assert list(csv.DictReader(io.StringIO(_download(staff, "Export contactable (CSV)").decode("utf-8-sig")))) == []
    staff.context.close()


def test_staff_define_fields_and_topics_visitors_answer_switch_export_and_erase_in_every_language(
    browser, app_server, ses, worker, pg
):
    OUTPUT.mkdir(exist_ok=True)
    fresh_version_ids()
    _staff_defines_the_fields(browser, app_server.url)  # also creates the staff member
    _staff_adds_a_date_field(browser, app_server.url)
    _define_topics(browser, app_server)
    version = published.current()
    assert [f["key"] for f in version.fields] == ["seats", "member", "interests", "visit"]
    _served(app_server.url, version.id)
    pages = {}
    for lang in LANGS:
        context = browser.new_context(viewport={"width": 420, "height": 1000}, locale=lang, accept_downloads=True)
        page = pages[lang] = context.new_page()
        _visitor_signs_up(page, app_server.url, lang)
        row = Signup.objects.using("default").get(email=f"form-{lang}@example.com")
        assert row.answers == ANSWERED[lang] and row.language == lang and row.form_version == version.id
        assert sorted(SignupTopic.objects.using("default").filter(signup=row).values_list("topic__key", flat=True)) == [
            "events", "news"]  # fmt: skip
        _confirms_and_leaves_events(page, ses, lang)
        states = dict(SignupTopic.objects.using("default").filter(signup=row).values_list("topic__key", "withdrawn_at"))
        assert states["news"] is None and states["events"] is not None
        _json_download(page, lang)
    pg.wait_for_replica()  # the admin's list and its exports read a replica
    _exports_are_typed(browser, app_server.url)
    # Each person erases themselves from their own page: the answers and the memberships go.
    for page in pages.values():
        page.get_by_test_id("erase").click()
        page.get_by_test_id("erase-confirm").click()
        page.wait_for_url("**/my-data/erased/")
        page.context.close()
    erased = Signup.objects.using("default").filter(language__in=LANGS)
    assert len(erased) == 4 and all(row.is_erased and row.answers == {} for row in erased)
    assert not SignupTopic.objects.using("default").filter(signup__in=erased).exists()
