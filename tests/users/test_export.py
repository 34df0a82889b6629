"""CSV export of the list and one person's JSON: permission-checked, filtered, streamed from a replica, audited."""

import csv
import datetime as dt
import io
import json
import re
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from tests.helpers import login_staff, sample_replicas
from users import export
from users.models import Signup, SignupExport

pytestmark = pytest.mark.usefixtures("live_db")

URL = "/admin/users/signup/export-csv/"


@pytest.fixture
def exporter(client):
    return login_staff("exporter", "view_signup", "export_signup", client=client)


@pytest.fixture
def signups(pg):
    now = timezone.now()
    rows = [
        Signup.objects.create(full_name="Old Timer", email="old@example.com", country="FR",
                              created_at=now - dt.timedelta(days=40)),
        Signup.objects.create(full_name="Mid Way", email="mid@example.org", country="GB", consent=True,
                              consent_at=now, consent_version="v1", phone="+442079460958",
                              created_at=now - dt.timedelta(days=3)),
        Signup.objects.create(full_name="=HYPERLINK(\"http://evil\")", email="new@example.net", country="GB",
                              user_agent="@SUM(A1)", created_at=now),
    ]  # fmt: skip
    pg.wait_for_replica()
    sample_replicas()
    return rows


def _many(pg, n: int) -> None:
    now = timezone.now()
    Signup.objects.bulk_create(
        Signup(full_name=f"Person {i}", email=f"p{i}@example.com", created_at=now - dt.timedelta(seconds=i))
        for i in range(n)
    )
    pg.wait_for_replica()
    sample_replicas()


def _export(client, params: dict | None = None, scope: str | None = "all", **form):
    """POST the list's export form, with the list's search and filters in the URL as the form has them.

    These tests' rows are mostly not contactable: "all records" unless a test asks for the default.
    """
    query = "?" + urlencode(params) if params else ""
    return client.post(URL + query, {"scope": scope, **form} if scope else form)


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_export_needs_the_export_permission(client, signups):
    assert client.post(URL).status_code == 302 and "/admin/login/" in client.post(URL)["Location"]
    login_staff("viewer", "view_signup", client=client)
    assert client.post(URL).status_code == 403
    assert "Export contactable" not in client.get("/admin/users/signup/").content.decode()
    assert not SignupExport.objects.using("default").exists()


def test_export_honours_search_and_filters_and_is_recorded(exporter, signups):
    response = _export(exporter, {"country__exact": "GB", "p": "1"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="signups-')
    assert "no-store" in response["Cache-Control"]
    rows = _csv(response)
    assert [row["email"] for row in rows] == ["new@example.net", "mid@example.org"]  # newest first, GB only
    assert list(rows[0]) == export.EXPORT_FIELDS
    assert [row["email"] for row in _csv(_export(exporter, {"q": "mid way"}))] == ["mid@example.org"]
    audits = list(SignupExport.objects.using("default").order_by("id"))
    assert [(a.kind, a.username, a.row_count, a.complete) for a in audits] == [
        ("csv", "exporter", 2, True),
        ("csv", "exporter", 1, True),
    ]
    assert audits[0].filters == {"country__exact": "GB", "scope": "all"}  # the page number is not a filter
    assert audits[0].finished_at >= audits[0].started_at


def test_the_list_has_an_export_form_for_what_it_shows(exporter, signups):
    page = exporter.get("/admin/users/signup/", {"country__exact": "GB"}).content.decode()
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"', page
    )
    assert form and form.group(1) == "/admin/users/signup/export/?country__exact=GB"


def test_a_get_of_the_export_url_starts_no_export(exporter, signups):
    page = exporter.get(URL, {"country__exact": "GB"})
    assert page.status_code == 200 and not page.streaming
    assert "Export the list?" in page.content.decode() and 'method="post"' in page.content.decode()
    assert '<input type="radio" name="scope" value="contactable" checked>' in page.content.decode()
    assert not SignupExport.objects.using("default").exists()


def test_a_cross_site_post_is_refused(signups):
    client = login_staff("exporter", "view_signup", "export_signup")  # a CSRF-checking client
    assert client.post(URL).status_code == 403  # no token: what another site's form sends
    assert client.post(URL, {"csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert not SignupExport.objects.using("default").exists()
    token = client.get(URL).context["csrf_token"]
    assert client.post(URL, {"csrfmiddlewaretoken": token}).status_code == 200  # the admin's own form


def test_cells_that_look_like_formulas_are_made_text_but_not_valid_phones(exporter, signups):
    Signup.objects.filter(pk=signups[2].pk).update(phone="+1+cmd|' /C calc'!A0")  # not E.164: an old or forged row
    response = _export(exporter)
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(body))}
    assert rows["new@example.net"]["full_name"] == '\'=HYPERLINK("http://evil")'
    assert rows["new@example.net"]["user_agent"] == "'@SUM(A1)"
    assert rows["new@example.net"]["phone"] == "'+1+cmd|' /C calc'!A0"
    assert rows["mid@example.org"]["phone"] == "+442079460958"
    assert '"+442079460958"' in body  # quoted: "Format quoted field as text" keeps the + (docs/staff.md)
    assert rows["mid@example.org"]["consent_at"].endswith("Z")  # ISO 8601, UTC
    assert rows["old@example.com"]["full_name"] == "Old Timer"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_gets_an_apostrophe(start):
    assert export.safe_cell(start + "1+1") == "'" + start + "1+1"
    assert export.safe_cell("a" + start) == "a" + start
    assert export.safe_cell("") == ""
    assert export.safe_cell(None) is None and export.safe_cell(5) == 5


def test_export_streams_through_a_server_side_cursor_on_the_replica(exporter, pg, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", 10)  # rows per FETCH
    monkeypatch.setattr(export, "FLUSH_BYTES", 1)  # a piece per row
    _many(pg, 60)
    response = _export(exporter)
    assert response.streaming
    pieces = iter(response.streaming_content)
    first = next(pieces).decode("utf-8-sig")
    assert first.startswith('"id","full_name","email"') and first.count("\n") == 2  # header and the newest row
    # The first bytes are out while the replica still holds an open, non-materialised cursor over the rest.
    with connections["replica1"].cursor() as cursor:
        cursor.execute("SELECT is_holdable, statement FROM pg_cursors")
        cursors = cursor.fetchall()
    assert len(cursors) == 1 and cursors[0][0] is False and "users_signup" in cursors[0][1]
    rest = b"".join(pieces).decode()
    assert rest.count("\n") == 59
    audit = SignupExport.objects.using("default").get()
    assert (audit.row_count, audit.complete) == (60, True)


def test_a_client_that_goes_away_is_recorded_with_what_was_sent(exporter, pg, monkeypatch):
    monkeypatch.setattr(export, "FLUSH_BYTES", 1)
    _many(pg, 30)
    response = _export(exporter)
    pieces = iter(response.streaming_content)
    for _ in range(3):
        next(pieces)
    assert SignupExport.objects.using("default").get().finished_at is None  # recorded from the start
    response.close()  # what the WSGI server does when the client disconnects
    audit = SignupExport.objects.using("default").get()
    assert (audit.row_count, audit.complete) == (3, False)
    assert audit.finished_at is not None


def test_export_of_one_person_is_confirmed_then_downloaded_as_json(signups):
    client = login_staff("exporter", "view_signup", "export_signup")
    person = signups[1]
    url = f"/admin/users/signup/{person.pk}/export-json/"
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Download JSON" in confirm.content.decode()
    assert "delete-confirmation" not in confirm.content.decode()  # not styled as a deletion (red)
    assert not SignupExport.objects.using("default").exists()  # nothing happens on GET
    assert client.post(url).status_code == 403  # no CSRF token
    response = client.post(url, {"csrfmiddlewaretoken": confirm.context["csrf_token"]})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="signup-{person.pk}.json"'
    data = json.loads(response.content)["signup"]
    assert data["email"] == "mid@example.org" and data["country"] == "GB" and data["phone"] == "+442079460958"
    assert set(data) == set(export.PERSON_FIELDS)
    audit = SignupExport.objects.using("default").get()
    assert (audit.kind, audit.filters, audit.row_count, audit.complete) == ("person", {"id": person.pk}, 1, True)
    record = client.get(f"/admin/users/signup/{person.pk}/change/").content.decode()
    assert f"Signup {person.pk}&#x27;s data was exported as JSON" in record  # the feedback, on the record


def test_export_of_one_person_needs_the_export_permission(client, signups):
    login_staff("viewer", "view_signup", client=client)
    url = f"/admin/users/signup/{signups[0].pk}/export-json/"
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert "Export data (JSON)" not in client.get(f"/admin/users/signup/{signups[0].pk}/change/").content.decode()


def test_exports_are_listed_read_only_in_the_admin(exporter, signups):
    b"".join(_export(exporter).streaming_content)
    user = User.objects.create_user("boss", password="a-long-test-password", is_staff=True, is_superuser=True)
    exporter.force_login(user)
    listing = exporter.get("/admin/users/signupexport/")
    assert listing.status_code == 200 and "exporter" in listing.content.decode()
    audit = SignupExport.objects.using("default").get()
    detail = exporter.get(f"/admin/users/signupexport/{audit.pk}/change/").content.decode()
    assert 'name="_save"' not in detail
    assert exporter.get("/admin/users/signupexport/add/").status_code == 403
    assert exporter.post(f"/admin/users/signupexport/{audit.pk}/delete/").status_code == 403
