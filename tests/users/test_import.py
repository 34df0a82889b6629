"""Importing a list from listmonk or Mailchimp: evidence kept, skips counted, preview first, emails throttled."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tests.helpers import login_staff
from users import emails, tasks, tombstones
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

# Mailchimp's audience export (subscribed members), as its UI writes it; the unsubscribed file adds UNSUB_*.
MAILCHIMP = ["Email Address", "First Name", "Last Name", "Phone Number", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP",
             "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION",
             "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"]  # fmt: skip
LISTMONK = ["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"]


def mailchimp_row(email: str, first="Ada", last="Lovelace", optin="", optin_ip="", confirm="", confirm_ip="",
                  phone="", cc="", **extra) -> dict:  # fmt: skip
    return {"Email Address": email, "First Name": first, "Last Name": last, "Phone Number": phone,
            "MEMBER_RATING": "2", "OPTIN_TIME": optin, "OPTIN_IP": optin_ip, "CONFIRM_TIME": confirm,
            "CONFIRM_IP": confirm_ip, "GMTOFF": "0", "DSTOFF": "0", "TIMEZONE": "Europe/London", "CC": cc,
            "REGION": "", "LAST_CHANGED": confirm or optin, "LEID": "222555609", "EUID": "2cbd66e9c4", "NOTES": "",
            "TAGS": '"Newsletter"', **extra}  # fmt: skip


def listmonk_row(email: str, name="Grace Hopper", status="enabled", attributes='{"city": "Bremen"}') -> dict:
    return {"uuid": "6a3d7d5f-8a4e-4c1e-9a6b-0d2f9d1c3e01", "email": email, "name": name,
            "attributes": attributes, "status": status, "created_at": "2024-03-01 10:00:00.123+00",
            "updated_at": "2024-03-02 10:00:00+00"}  # fmt: skip


def csv_bytes(header: list[str], rows: list[dict], bom: bool = True) -> bytes:
    out = StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


def import_file(tmp_path, data: bytes, *args) -> str:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    out = StringIO()
    call_command("import_signups", str(path), *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_mailchimp_export_keeps_each_rows_consent_evidence(tmp_path):
    data = csv_bytes(MAILCHIMP, [
        mailchimp_row("Ada@Example.COM", optin="2018-06-12 07:50:00", optin_ip="76.216.210.1",
                      confirm="2018-06-12 07:53:28", confirm_ip="76.216.210.2", phone="020 7946 0958", cc="GB"),
        mailchimp_row("single@example.com", first="Single", confirm="2019-01-02 03:04:05", confirm_ip="13.210.204.7"),
        mailchimp_row("unproven@example.com", first="Unproven"),
        mailchimp_row("not an address"),
        mailchimp_row("ada@example.com"),  # the first row again, another case
    ])  # fmt: skip
    out = import_file(tmp_path, data)
    assert out.splitlines()[-1] == ("import_signups: 5 rows (mailchimp): 2 confirmed, 1 unconfirmed, 1 repeated,"
                                    " 1 invalid")  # fmt: skip
    ada = Signup.objects.get(email="Ada@example.com")  # the domain lower-cased, as the form does
    assert (ada.full_name, ada.phone, ada.country.code, ada.status) == ("Ada Lovelace", "+442079460958", "GB",
                                                                        "confirmed")  # fmt: skip
    assert ada.consent_at == datetime(2018, 6, 12, 7, 50, tzinfo=UTC) and ada.consent_version == "import:mailchimp"
    events = [(e.kind, e.at, e.wording_version, e.ip) for e in ada.events.all()]
    assert events == [
        ("given", datetime(2018, 6, 12, 7, 50, tzinfo=UTC), "import:mailchimp", "76.216.210.1"),
        ("confirmed", datetime(2018, 6, 12, 7, 53, 28, tzinfo=UTC), "import:mailchimp", "76.216.210.2"),
    ]
    single = Signup.objects.get(email="single@example.com")  # single opt-in: consent given when it was confirmed
    single_events = [(e.kind, e.at.year, e.ip) for e in single.events.all()]
    assert single_events == [("given", 2019, "13.210.204.7"), ("confirmed", 2019, "13.210.204.7")]
    unproven = Signup.objects.get(email="unproven@example.com")
    assert unproven.status == "unconfirmed" and not unproven.events.exists()
    queued = list(tasks.email_tasks().values_list("args_kwargs__kwargs__signup_id", "args_kwargs__kwargs__kind"))
    assert queued == [(unproven.pk, emails.CONFIRM)]  # the confirmed are not asked again


def test_duplicates_erased_blocked_and_opted_out_addresses_are_skipped_and_counted(tmp_path, pg):
    now = timezone.now()
    Signup.objects.create(full_name="Here", email="here@example.com", consent=True)
    Signup.objects.create(full_name="Bounced", email="bounced@example.com", consent=True, email_blocked_at=now)
    entry = tombstones.make_entry(address="Gone@Example.com", signup_id=99, created_at=now, erased_at=now,
                                  reason="erased")  # fmt: skip
    tombstones.write(tombstones.name_for(99, now), entry)  # the ledger remembers an erased address, by HMAC only
    pg.wait_for_replica()
    data = csv_bytes(LISTMONK, [
        listmonk_row("HERE@example.com"), listmonk_row("bounced@example.com"), listmonk_row("gone@example.com"),
        listmonk_row("blocked-there@example.com", status="blocklisted"), listmonk_row("new@example.com"),
    ])  # fmt: skip
    out = import_file(tmp_path, data)
    preview = out.splitlines()[1:-1]
    assert [line.split(None, 1) for line in preview if "last confirmation" not in line] == [
        ["1", "imported unconfirmed: a confirmation email is queued"], ["1", "skipped: already here"],
        ["1", "skipped: address blocked here (bounce or complaint)"],
        ["1", "skipped: erased here (never brought back)"],
        ["1", "skipped: unsubscribed, cleaned or blocklisted in the source"],
    ]  # fmt: skip
    assert out.splitlines()[-1] == ("import_signups: 5 rows (listmonk): 1 unconfirmed, 1 duplicate, 1 blocked,"
                                    " 1 erased, 1 opted_out")  # fmt: skip
    assert sorted(Signup.objects.values_list("email", flat=True)) == [
        "bounced@example.com", "here@example.com", "new@example.com"]  # fmt: skip
    assert Signup.objects.get(email="here@example.com").full_name == "Here"  # the row here is left as it was


def test_an_unknown_layout_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CommandError, match="neither listmonk's subscriber export nor a Mailchimp"):
        import_file(tmp_path, b"name,mail\nAda,ada@example.com\n")
    assert not Signup.objects.exists()


def test_a_file_that_is_not_csv_is_refused_on_the_page_not_with_an_error(pg):
    staff = login_staff("importer", "view_signup", "add_signup", client=Client())
    header = ",".join(LISTMONK).encode()
    binary = staff.post("/admin/users/signup/import/", {"file": io.BytesIO(header + b"\r\na\x00b,\xff\xfe\r\n")})
    assert binary.status_code == 200 and "Skipped: no valid email address</td><td class=\"count\">1<" in (
        binary.content.decode())  # fmt: skip
    huge = staff.post("/admin/users/signup/import/", {"file": io.BytesIO(header + b"\r\n" + b"x" * 200_000)})
    assert huge.status_code == 200 and "Not imported: the file is not a readable CSV" in huge.content.decode()
    assert not Signup.objects.exists()


def test_staff_with_the_add_permission_preview_then_import_on_a_post(pg):
    data = csv_bytes(LISTMONK, [listmonk_row("one@example.com", attributes='{"language": "de"}'),
                                listmonk_row("two@example.com")], bom=False)  # fmt: skip
    viewer = login_staff("viewer", "view_signup", client=Client())
    assert viewer.get("/admin/users/signup/import/").status_code == 403
    assert "Import a list" not in viewer.get("/admin/users/signup/").content.decode()
    staff = login_staff("importer", "view_signup", "add_signup", client=Client())
    assert "Import a list" in staff.get("/admin/users/signup/").content.decode()
    page = staff.post("/admin/users/signup/import/", {"file": io.BytesIO(data), "language": "fr"})
    html = page.content.decode()
    assert "2 rows in listmonk's layout" in html and "one@example.com" in html
    assert re.search(r"Imported unconfirmed: a confirmation email is queued</td><td class=\"count\">2<", html)
    assert not Signup.objects.exists()  # a preview writes nothing
    token = page.context["token"]
    assert staff.get("/admin/users/signup/import/run/").status_code == 302  # a GET starts nothing
    assert not Signup.objects.exists()
    done = staff.post("/admin/users/signup/import/run/", {"token": token}, follow=True)
    assert "Imported 2 rows: 2 imported unconfirmed" in done.content.decode()
    assert dict(Signup.objects.values_list("email", "language")) == {"one@example.com": "de", "two@example.com": "fr"}
    again = staff.post("/admin/users/signup/import/run/", {"token": token}, follow=True)  # the token is spent
    assert "no longer held" in again.content.decode() and Signup.objects.count() == 2


def test_unconfirmed_rows_are_asked_at_the_reconfirm_rate_after_emails_already_waiting(tmp_path, settings):
    settings.RECONFIRM_PER_HOUR = 60  # one a minute
    waiting = Signup.objects.create(full_name="Earlier", email="earlier@example.com", consent=True)
    tasks.email_tasks().delete()
    later = timezone.now() + timedelta(minutes=10)
    tasks.enqueue_email(waiting.pk, emails.RECONFIRM, run_after=later)  # an earlier spread still draining
    import_file(tmp_path, csv_bytes(LISTMONK, [listmonk_row(f"p{i}@example.com") for i in range(3)]))
    times = [t for t in tasks.email_tasks().order_by("run_after").values_list("run_after", flat=True)]
    assert times[0] == later and len(times) == 4
    assert [round((b - a).total_seconds()) for a, b in itertools.pairwise(times)] == [60, 60, 60]


def test_a_name_or_phone_we_cannot_store_drops_that_field_not_the_person(tmp_path):
    data = csv_bytes(MAILCHIMP, [mailchimp_row("bell@example.com", first="Ring\x07", phone="12", cc="GB",
                                               confirm="2020-01-01 00:00:00")])  # fmt: skip
    assert import_file(tmp_path, data).splitlines()[-1] == "import_signups: 1 rows (mailchimp): 1 confirmed"
    assert Signup.objects.values_list("full_name", "phone").get() == ("", "")
