"""Importing real-sized files: 100,000 rows in listmonk's and Mailchimp's layouts timed and counted, and a small
import's throttled confirmation emails read back from moto's SES, sent by a real `manage.py worker` process."""

from __future__ import annotations

import time
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from tests.users.mail import recipients, sent_mail, start_worker, stop, text_of, verify_sender, wait_for, worker_env
from tests.users.test_import import LISTMONK, MAILCHIMP, csv_bytes, listmonk_row, mailchimp_row
from users import tasks
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

ROWS = 100_000


@pytest.fixture
def ses(moto_server):
    moto_server.reset()
    verify_sender(moto_server.url)
    return moto_server


def _run(path) -> tuple[str, float]:
    out = StringIO()
    started = time.monotonic()
    call_command("import_signups", str(path), stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[-1], time.monotonic() - started


def test_a_hundred_thousand_rows_in_each_layout(tmp_path, pg):
    Signup.objects.bulk_create(
        Signup(full_name="Here", email=f"m{i}@example.com", consent=True) for i in range(0, 1000)
    )
    # Mailchimp: 1 in 10 without evidence, 1 in 50 repeated, the first 1,000 already here.
    chimp = [mailchimp_row(f"m{i}@example.com", optin="" if i % 10 == 0 else "2020-01-02 03:04:05",
                           optin_ip="198.51.100.7", confirm="" if i % 10 == 0 else "2020-01-02 03:05:00",
                           confirm_ip="198.51.100.8", phone="+44 20 7946 0958", cc="GB")
             for i in range(ROWS - ROWS // 50)]  # fmt: skip
    chimp += chimp[: ROWS // 50]
    (tmp_path / "mailchimp.csv").write_bytes(csv_bytes(MAILCHIMP, chimp))
    # listmonk: no per-row evidence; 1 in 100 blocklisted.
    monk = [listmonk_row(f"l{i}@example.com", status="blocklisted" if i % 100 == 0 else "enabled") for i in range(ROWS)]
    (tmp_path / "listmonk.csv").write_bytes(csv_bytes(LISTMONK, monk))

    chimp_summary, chimp_seconds = _run(tmp_path / "mailchimp.csv")
    print(f"\nMailchimp {ROWS:,} rows: {chimp_seconds:.1f} s; {chimp_summary}")
    monk_summary, monk_seconds = _run(tmp_path / "listmonk.csv")
    print(f"listmonk {ROWS:,} rows: {monk_seconds:.1f} s; {monk_summary}")

    assert chimp_summary == ("import_signups: 100,000 rows (mailchimp): 87,300 confirmed, 9,700 unconfirmed,"
                             " 1,000 duplicate, 2,000 repeated")  # fmt: skip
    assert monk_summary == "import_signups: 100,000 rows (listmonk): 99,000 unconfirmed, 1,000 opted_out"
    statuses = Counter(Signup.objects.values_list("status", flat=True))
    assert statuses == {"confirmed": 87_300, "unconfirmed": 9_700 + 99_000 + 1_000}
    assert tasks.email_tasks().count() == 9_700 + 99_000


def test_a_small_imports_confirmation_emails_go_out_spread_and_in_each_language(tmp_path, ses, settings):
    settings.RECONFIRM_PER_HOUR = 3600  # one a second: the test sees them all go, one after the other
    rows = [listmonk_row(f"{lang}@example.com", name=f"Person {lang}", attributes=f'{{"language": "{lang}"}}')
            for lang in ("de", "fr", "es", "en")]  # fmt: skip
    (tmp_path / "small.csv").write_bytes(csv_bytes(LISTMONK, rows))
    summary, _seconds = _run(tmp_path / "small.csv")
    assert summary == "import_signups: 4 rows (listmonk): 4 unconfirmed"
    worker = start_worker(worker_env(ses.url), tmp_path / "worker.log")
    started = time.monotonic()
    try:
        wait_for(lambda: len(sent_mail(ses.url)) >= 2, 30, "the first two emails")
        assert len(sent_mail(ses.url)) < 4  # spread: not all at once
        wait_for(lambda: len(sent_mail(ses.url)) >= 4, 30, "four emails")
    finally:
        assert stop(worker) == 0
    assert time.monotonic() - started >= 2.5  # four emails a second apart
    messages = sent_mail(ses.url)
    assert recipients(messages) == ["de@example.com", "en@example.com", "es@example.com", "fr@example.com"]
    subjects = {str(m["To"]).split("@")[0]: str(m["Subject"]) for m in messages}
    assert subjects["en"] == "Signups: Please confirm your address"
    assert len(set(subjects.values())) == 4  # each in its own language
    assert all("/signup/confirm/" in text_of(m) for m in messages)
