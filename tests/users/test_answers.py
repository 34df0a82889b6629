"""The answers to the fields staff added: stored typed with the signup, judged by the version the person saw,
shown on their page and in their download, exported typed, in the API and webhooks, erased with them."""

import csv
import io
import json
import re
import zipfile
from xml.etree import ElementTree

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.test import Client

from api.models import Event
from api.payloads import body as webhook_body
from formdef import published
from formdef.models import Field
from tests.formdef.fields import POSTED, STORED, define
from tests.helpers import login_staff, sample_replicas
from tests.users.mail import link, run_queue
from users.erasure import erase_signup
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

PERSON = {"full_name": "Ada Lovelace", "email": "ada@example.com", "consent": "on", "country": "GB"}
CHANGED = "This form changed while you had it open"
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _post(client, version, language="en", **changes):
    data = {**PERSON, **POSTED, "form_version": "" if version is None else str(version), **changes}
    return client.post("/signup/", {k: v for k, v in data.items() if v is not None}, REMOTE_ADDR="198.51.100.23",
                       HTTP_ACCEPT_LANGUAGE=language)  # fmt: skip


def _row() -> Signup:
    return Signup.objects.using("default").get()


def test_the_form_carries_its_version_and_shows_the_fields_in_the_visitor_s_language(client):
    version = define()
    page = client.get("/signup/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert f'name="form_version" value="{version.id}"' in page
    assert "Company [de]" in page and "Where you work [de]" in page and 'type="date"' in page
    assert page.index('name="country"') < page.index('name="f_company"') < page.index('name="consent"')
    assert "<legend>Interests [de] (optional)</legend>" in page and 'type="checkbox" name="f_interests"' in page


def test_a_signup_stores_its_answers_typed_with_the_version_in_the_one_statement(client):
    version = define()
    assert _post(client, version.id).status_code == 302
    row = _row()
    assert row.answers == STORED and row.form_version == version.id
    with connection.cursor() as cursor:
        cursor.execute("SELECT jsonb_typeof(answers->'seats'), jsonb_typeof(answers->'member'),"
                       " jsonb_typeof(answers->'interests') FROM users_signup")  # fmt: skip
        assert cursor.fetchone() == ("number", "boolean", "array")


def test_the_database_refuses_answers_that_are_not_an_object():
    with pytest.raises(IntegrityError), transaction.atomic():
        Signup.objects.create(full_name="A", email="a@example.com", answers=["not", "an", "object"])


def test_a_change_made_while_the_form_was_open_does_not_change_how_it_is_judged(client):
    seen = define()
    # Staff tighten the company field and add a required question after the visitor opened the form.
    Field.objects.filter(key="company").update(max_length=3)
    Field.objects.create(key="team", kind=Field.TEXT, required=True, label={"en": "Team", "de": "T", "fr": "T",
                                                                           "es": "T"})  # fmt: skip
    newer = published.publish("staff")
    assert newer.pk != seen.id
    assert _post(client, seen.id).status_code == 302  # judged by what the person saw
    assert _row().answers == STORED and _row().form_version == seen.id


@pytest.mark.parametrize("version", [None, "987654", "abc", "-1", "1" * 40])
def test_an_unknown_or_missing_version_shows_the_form_again_and_stores_nothing(client, version):
    current = define()
    response = _post(client, None, form_version=version)
    assert response.status_code == 409
    page = response.content.decode()
    assert CHANGED in page and f'name="form_version" value="{current.id}"' in page
    assert 'value="ACME  Ltd"' in page or "ACME" in page  # what they typed is still there
    assert not Signup.objects.using("default").exists()


def test_without_fields_a_form_without_a_version_is_still_taken(client):
    assert _post(client, None, **{k: None for k in POSTED}).status_code == 302
    assert _row().answers == {} and _row().form_version == 0


def test_an_answer_for_a_field_removed_before_the_form_was_opened_is_refused(client):
    define(["company"])
    Field.objects.filter(key="company").update(active=False)
    version = published.publish("staff")
    response = _post(client, version.pk, f_company="ACME", **{k: None for k in POSTED if k != "f_company"})
    assert response.status_code == 400 and "does not ask some of what was sent" in response.content.decode()
    assert not Signup.objects.using("default").exists()


def _confirmed_person(client, language="fr"):
    version = define()
    assert _post(client, version.id, language=language).status_code == 302
    run_queue()
    message = mail.outbox[0]
    client.post(link(message, "/signup/confirm/"))
    client.cookies.clear()
    exchange = client.get(link(message, "/my-data/"))
    return exchange["Location"]


def test_the_manage_page_and_download_list_the_answers_with_labels_in_the_person_s_language(client):
    manage = _confirmed_person(client, "fr")
    # A field taken off the form, and one deleted: their answers stay, named by their last known label.
    Field.objects.filter(key="member").update(active=False)
    Field.objects.filter(key="born").delete()
    published.publish("staff")
    page = client.get(manage, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert re.search(r"<dt>Interests \[fr\]</dt><dd[^>]*>News \[fr\], Events \[fr\]</dd>", page), page
    assert "<dt>Already a member [fr]</dt>" in page and ">Non</dd>" in page
    assert "<dt>Date of birth [fr]</dt>" in page and ">28 février 1990</dd>" in page  # written out, in French
    data = json.loads(client.post(manage + "download/").content)
    assert data["signup"]["answers"] == STORED
    told = {a["key"]: a for a in data["answers_explained"]}
    assert told["seats"] == {"key": "seats", "label": "Seats [fr]", "value": 12, "shown": "12"}
    assert told["born"]["label"] == "Date of birth [fr]"


def test_erasure_removes_the_answers(client):
    version = define()
    _post(client, version.id)
    erase_signup(_row().pk)
    assert _row().answers == {}


@pytest.fixture
def answered(client):
    version = define()
    assert _post(client, version.id).status_code == 302
    Signup.objects.using("default").update(confirmed_at=_row().created_at)  # contactable
    run_queue()
    sample_replicas()
    return _row()


def test_the_csv_has_a_column_per_field_with_typed_values(client, answered, pg):
    staff = login_staff("exporter", "view_signup", "export_signup", client=Client())
    pg.wait_for_replica()
    response = staff.post("/admin/users/signup/export-csv/", {"scope": "all"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header, row = rows[0], rows[1]
    cells = dict(zip(header, row, strict=True))
    assert header[-6:] == ["answer_company", "answer_seats", "answer_source", "answer_interests", "answer_member",
                           "answer_born"]  # fmt: skip
    assert (cells["answer_company"], cells["answer_seats"], cells["answer_interests"]) == ("ACME Ltd", "12",
                                                                                           "news; events")  # fmt: skip
    assert (cells["answer_member"], cells["answer_born"]) == ("False", "1990-02-28")


def test_the_xlsx_cells_are_typed_numbers_booleans_and_dates(client, answered, pg):
    staff = login_staff("exporter", "view_signup", "export_signup", client=Client())
    pg.wait_for_replica()
    response = staff.post("/admin/users/signup/export-csv/", {"scope": "all", "format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as book:
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))  # noqa: S314 - our own file
    header, row = [r.findall("m:c", NS) for r in sheet.find("m:sheetData", NS)]
    cell = dict(zip([c.find("m:is/m:t", NS).text for c in header], row, strict=True))
    assert cell["answer_seats"].get("t") is None and cell["answer_seats"].find("m:v", NS).text == "12"
    assert cell["answer_member"].get("t") == "b" and cell["answer_member"].find("m:v", NS).text == "0"
    born = cell["answer_born"]
    assert born.get("s") == "4" and born.find("m:v", NS).text == str(32932)  # 1990-02-28 as a spreadsheet day
    assert cell["answer_company"].find("m:is/m:t", NS).text == "ACME Ltd"


def test_the_admin_filters_by_answers_and_shows_them_on_the_record(client, answered, pg):
    staff = login_staff("viewer", "view_signup", client=Client())
    other = Signup.objects.create(full_name="Bob", email="bob@example.com", answers={"source": "web"})
    pg.wait_for_replica()
    page = staff.get("/admin/users/signup/", {"answer_source": "press"}).content.decode()
    assert "Ada Lovelace" in page and "bob@example.com" not in page
    page = staff.get("/admin/users/signup/", {"answer_interests": "events"}).content.decode()
    assert "Ada Lovelace" in page and "bob@example.com" not in page
    page = staff.get("/admin/users/signup/", {"answer_member": "yes"}).content.decode()
    assert "Ada Lovelace" not in page
    record = staff.get(f"/admin/users/signup/{answered.pk}/change/").content.decode()
    assert "<th>How did you hear of us</th><td>Press</td>" in record
    assert other.pk


def test_the_api_and_a_full_webhook_payload_carry_the_answers(client, answered):
    from tests.api.test_api import BASE, make_key

    token = make_key()
    data = client.get(f"{BASE}/signups/{answered.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert data["answers"] == STORED and data["form_version"] == answered.form_version
    event = Event.objects.using("default").filter(signup_id=answered.pk).first()
    assert json.loads(webhook_body(event, full=True, using="default"))["data"]["answers"] == STORED
    assert "answers" not in json.loads(webhook_body(event, full=False, using="default"))["data"]


def test_the_purge_of_a_withdrawn_person_removes_their_answers(settings):
    from datetime import timedelta

    from django.utils import timezone

    from users import retention

    settings.RETENTION_WITHDRAWN_DAYS, settings.PURGE_MAX_FLOOR = 30, 100
    settings.DOUBLE_OPT_IN_SINCE = timezone.now() - timedelta(days=365)
    long_ago = timezone.now() - timedelta(days=31)
    gone = Signup.objects.create(full_name="Old", email="old@example.com", answers=STORED, withdrawn_at=long_ago,
                                 confirmed_at=long_ago, consent=True)  # fmt: skip
    kept = Signup.objects.create(full_name="New", email="new@example.com", answers=STORED, confirmed_at=long_ago,
                                 consent=True)  # fmt: skip
    retention.purge()
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.is_erased and gone.answers == {} and kept.answers == STORED
