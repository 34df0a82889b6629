"""`manage.py purge` with frozen time (freezegun): it removes exactly what the retention settings say,
a second run finds nothing, and two runs at once on the real primary share the work exactly. Signups from
before the double opt-in cut-over are never deleted as unconfirmed (`manage.py reconfirm` asks them), and
the ceiling stops a run that would delete or erase too large a share of the list."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, connections
from freezegun import freeze_time

from tests.users.mail import run_queue
from users import emails, retention, tasks
from users.erasure import erase_signup
from users.models import ConsentEvent, Erasure, Signup, SignupExport

pytestmark = pytest.mark.usefixtures("live_db")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def periods(settings):
    settings.RETENTION_UNCONFIRMED_DAYS, settings.RETENTION_NETWORK_DAYS, settings.RETENTION_WITHDRAWN_DAYS = 30, 90, 30
    settings.DOUBLE_OPT_IN_SINCE = NOW - 365 * DAY  # every row of _world() is from after double opt-in began
    settings.PURGE_MAX_SHARE, settings.PURGE_MAX_FLOOR = 5.0, 100
    return settings


def _signup(name: str, created: datetime, *, confirmed: datetime | None = None, withdrawn: datetime | None = None,
            language: str = "en"):  # fmt: skip
    """A signup made at `created` (time frozen there), as the form and the confirm page leave it."""
    with freeze_time(created):
        signup = Signup.objects.create(full_name=name, email=f"{name}@example.com", consent=True, language=language,
                                       consent_at=created, consent_version="v1", ip_address="198.51.100.7",
                                       user_agent="Firefox/140")  # fmt: skip
        ConsentEvent.objects.create(signup=signup, kind=ConsentEvent.GIVEN, wording_version="v1", ip="198.51.100.7")
        tasks.enqueue_email(signup.pk, "confirm")
    if confirmed:
        with freeze_time(confirmed):
            Signup.objects.filter(pk=signup.pk).update(confirmed_at=confirmed, confirmed_ip="203.0.113.5")
            ConsentEvent.objects.create(signup=signup, kind=ConsentEvent.CONFIRMED, ip="203.0.113.5")
    if withdrawn:
        with freeze_time(withdrawn):
            Signup.objects.filter(pk=signup.pk).update(withdrawn_at=withdrawn)
            ConsentEvent.objects.create(signup=signup, kind=ConsentEvent.WITHDRAWN, ip="203.0.113.6")
    return signup


def _export(started: datetime, filters: dict) -> SignupExport:
    with freeze_time(started):
        return SignupExport.objects.create(kind=SignupExport.CSV, username="staff", filters=filters)


def _purge(**kwargs) -> dict:
    with freeze_time(NOW):
        return retention.purge(**kwargs)


def _world():
    """One row on each side of every boundary (one second either way)."""
    unconfirmed = timedelta(days=30)
    rows = {
        "unconfirmed_due": _signup("old-unconfirmed", NOW - unconfirmed - SECOND),
        "unconfirmed_young": _signup("young-unconfirmed", NOW - unconfirmed + SECOND),
        "network_due": _signup("old-confirmed", NOW - 90 * DAY - SECOND, confirmed=NOW - 90 * DAY - SECOND),
        "network_young": _signup("young-confirmed", NOW - 90 * DAY + SECOND, confirmed=NOW - 90 * DAY + SECOND),
        "withdrawn_due": _signup(
            "old-withdrawn", NOW - 60 * DAY, confirmed=NOW - 60 * DAY, withdrawn=NOW - 30 * DAY - SECOND
        ),
        "withdrawn_young": _signup(
            "young-withdrawn", NOW - 60 * DAY, confirmed=NOW - 60 * DAY, withdrawn=NOW - 30 * DAY + SECOND
        ),
        "erased": _signup("erased", NOW - 200 * DAY),
    }
    with freeze_time(NOW - 150 * DAY):
        erase_signup(rows["erased"].pk, None)
    exports = {
        "due": _export(NOW - 90 * DAY - SECOND, {"q": "lovelace", "country__exact": "GB"}),
        "young": _export(NOW - 90 * DAY + SECOND, {"q": "hopper"}),
        "no_search": _export(NOW - 200 * DAY, {"consent__exact": "1"}),
    }
    return rows, exports


def test_the_purge_removes_exactly_what_the_settings_say(caplog):
    rows, exports = _world()
    counts = _purge()
    get = {key: Signup.objects.filter(pk=row.pk).first() for key, row in rows.items()}

    # 1. The unconfirmed signup past 30 days is gone with its ledger and its queued email; the younger stays.
    assert get["unconfirmed_due"] is None
    assert not ConsentEvent.objects.filter(signup_id=rows["unconfirmed_due"].pk).exists()
    assert not tasks.email_tasks(rows["unconfirmed_due"].pk).exists()
    assert get["unconfirmed_young"].email == "young-unconfirmed@example.com"
    assert tasks.email_tasks(rows["unconfirmed_young"].pk).exists()
    # The already-erased row was never confirmed either, but it holds nothing and keeps its audit: untouched.
    assert get["erased"] is not None and Erasure.objects.filter(signup_id=rows["erased"].pk).count() == 1

    # 2. Network data past 90 days is cleared (signup, confirmation, ledger); the ledger keeps what and when.
    old = get["network_due"]
    assert (old.ip_address, old.user_agent, old.confirmed_ip) == (None, "", None)
    assert old.confirmed_at is not None and old.email == "old-confirmed@example.com"
    assert list(old.events.values_list("kind", "ip")) == [("given", None), ("confirmed", None)]
    young = get["network_young"]
    assert (young.ip_address, young.user_agent, young.confirmed_ip) == ("198.51.100.7", "Firefox/140", "203.0.113.5")
    assert list(young.events.values_list("ip", flat=True)) == ["198.51.100.7", "203.0.113.5"]

    # 3. Consent withdrawn over 30 days ago: erased, with a `purged` event and no personal data left.
    gone = get["withdrawn_due"]
    assert gone.is_erased and gone.full_name == "" and gone.ip_address is None
    assert list(gone.events.values_list("kind", flat=True)) == ["given", "confirmed", "withdrawn", "purged"]
    assert set(gone.events.values_list("ip", flat=True)) == {None}
    assert Erasure.objects.get(signup_id=gone.pk).username == "(retention)"
    kept = get["withdrawn_young"]
    assert not kept.is_erased and kept.email == "young-withdrawn@example.com"

    # 4. Export records older than 90 days keep that a search was used, not what it was.
    exports = {key: SignupExport.objects.get(pk=e.pk).filters for key, e in exports.items()}
    assert exports == {
        "due": {"q": "(removed)", "country__exact": "GB"},
        "young": {"q": "hopper"},
        "no_search": {"consent__exact": "1"},
    }

    assert counts == {
        "unconfirmed_deleted": 1,
        "ip_user_agent_cleared": 1,
        "confirmed_ip_cleared": 1,
        "event_ips_cleared": 2,
        "withdrawn_erased": 1,
        "export_searches_cleared": 1,
    }
    # The log says counts, never who.
    assert "example.com" not in caplog.text and "lovelace" not in caplog.text


def test_a_second_run_finds_nothing(caplog):
    _world()
    first = _purge()
    assert sum(first.values()) == 7
    assert _purge() == dict.fromkeys(first, 0)


def test_the_periods_come_from_the_settings(periods):
    rows, _ = _world()
    periods.RETENTION_UNCONFIRMED_DAYS, periods.RETENTION_WITHDRAWN_DAYS, periods.RETENTION_NETWORK_DAYS = 29, 200, 365
    counts = _purge()
    assert counts["unconfirmed_deleted"] == 2  # the 30-day-old one is now due too
    assert counts["withdrawn_erased"] == 0 and counts["ip_user_agent_cleared"] == 0
    assert not Signup.objects.filter(pk=rows["unconfirmed_young"].pk).exists()


def test_a_dry_run_counts_and_changes_nothing():
    _world()
    before = list(Signup.objects.order_by("pk").values())
    counts = _purge(dry_run=True)
    assert counts["unconfirmed_deleted"] == 1 and counts["withdrawn_erased"] == 1
    assert list(Signup.objects.order_by("pk").values()) == before


def test_the_command_prints_one_summary_line():
    _world()
    out = StringIO()
    with freeze_time(NOW):
        call_command("purge", stdout=out)
    assert out.getvalue().strip() == (
        "purge: unconfirmed_deleted 1, ip_user_agent_cleared 1, confirmed_ip_cleared 1, event_ips_cleared 2,"
        " withdrawn_erased 1, export_searches_cleared 1"
    )


def test_two_purges_at_once_share_the_work_exactly(settings, pg):
    """Two purges in threads, each with its own connection to the real primary, small batches so they overlap."""
    settings.PURGE_BATCH_SIZE = 20
    created = NOW - 100 * DAY
    with freeze_time(created):
        people = Signup.objects.bulk_create(
            Signup(full_name=f"p{i}", email=f"p{i}@example.com", consent=True, ip_address="198.51.100.9",
                   user_agent="UA", confirmed_at=created if i % 3 else None,
                   withdrawn_at=created if i % 3 == 1 else None)
            for i in range(300)
        )  # fmt: skip
        ConsentEvent.objects.bulk_create(ConsentEvent(signup=p, kind="given", ip="198.51.100.9") for p in people)
    # 100 unconfirmed (deleted), 100 withdrawn (erased), 100 kept: their IPs and user agents cleared.
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(_purge(force=True))  # 2 in 3 rows go: over the ceiling on purpose
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    with freeze_time(NOW):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == [] and len(results) == 2
    total = {key: results[0][key] + results[1][key] for key in results[0]}
    assert total["unconfirmed_deleted"] == 100
    assert total["withdrawn_erased"] == 100
    # Rule 2 runs before rule 3: every row that survives rule 1 (200) has its network data cleared by it.
    assert total["ip_user_agent_cleared"] == 200
    assert total["event_ips_cleared"] == 200
    assert Signup.objects.count() == 200
    assert Signup.objects.filter(email__endswith="@invalid").count() == 100
    assert Erasure.objects.count() == 100 and ConsentEvent.objects.filter(kind="purged").count() == 100
    assert not Signup.objects.filter(ip_address__isnull=False).exists()
    assert _purge(force=True) == dict.fromkeys(total, 0)


def test_a_row_someone_else_holds_is_left_for_the_next_run_without_waiting(pg):
    """SKIP LOCKED: a person erasing themselves right now (their row locked) neither blocks nor breaks the purge."""
    import psycopg

    rows, _ = _world()
    due = rows["unconfirmed_due"].pk
    with psycopg.connect(pg.primary_url.replace("postgres://", "postgresql://"), connect_timeout=5) as other:
        other.execute("SELECT 1 FROM users_signup WHERE id = %s FOR UPDATE", [due])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a purge that waited for the lock would fail here
        counts = _purge()
        assert counts["unconfirmed_deleted"] == 0 and counts["withdrawn_erased"] == 1
        assert Signup.objects.filter(pk=due).exists()
    assert _purge()["unconfirmed_deleted"] == 1
    assert not Signup.objects.filter(pk=due).exists()


# --- the double opt-in cut-over ---------------------------------------------------------------------------
def _applied_0004() -> datetime:
    from django.db.migrations.recorder import MigrationRecorder

    return (
        MigrationRecorder(connection).migration_qs.get(app="users", name="0004_person_confirm_consent_ledger").applied
    )


def test_the_cut_over_is_when_migration_0004_ran_plus_a_day_unless_set(settings):
    settings.DOUBLE_OPT_IN_SINCE = None
    assert retention.cutover() == _applied_0004() + retention.CUTOVER_GRACE
    settings.DOUBLE_OPT_IN_SINCE = NOW
    assert retention.cutover() == NOW


def test_signups_from_before_the_cut_over_are_never_deleted_as_unconfirmed(settings):
    """The review's case: consented rows 400 days old, never confirmed (no double opt-in then), purged daily."""
    settings.DOUBLE_OPT_IN_SINCE = None  # the cut-over read from the database: when 0004 was applied here
    since = _applied_0004() + retention.CUTOVER_GRACE
    old = [_signup(f"before{i}", since - 400 * DAY + i * SECOND) for i in range(3)]
    edge = _signup("just-before", since - SECOND)  # a signup taken by the old release during the rollout
    after = _signup("after", since + SECOND)  # made after double opt-in began, never confirmed: due
    for later in (since + 31 * DAY, since + 1000 * DAY):  # the first daily purge, and years of them
        with freeze_time(later):
            retention.purge()
    kept = set(Signup.objects.values_list("pk", flat=True))
    assert {s.pk for s in [*old, edge]} <= kept
    assert after.pk not in kept
    assert all(not Signup.objects.get(pk=s.pk).is_erased for s in old)  # still theirs, untouched
    assert ConsentEvent.objects.filter(signup_id__in=[s.pk for s in old], kind="given").count() == 3


def test_without_a_known_cut_over_nothing_is_deleted_as_unconfirmed(settings, monkeypatch, caplog):
    settings.DOUBLE_OPT_IN_SINCE = None
    monkeypatch.setattr(retention, "OPT_IN_MIGRATION", ("users", "0004_not_recorded"))
    rows, _ = _world()
    counts = _purge()
    assert counts["unconfirmed_deleted"] == 0 and Signup.objects.filter(pk=rows["unconfirmed_due"].pk).exists()
    assert counts["withdrawn_erased"] == 1  # the other rules still run
    assert "rule 1 is off" in caplog.text


# --- the ceiling and the summary first --------------------------------------------------------------------
def _many(count: int, unconfirmed: int) -> None:
    created = NOW - 100 * DAY
    with freeze_time(created):
        Signup.objects.bulk_create(
            Signup(full_name=f"p{i}", email=f"p{i}@example.com", consent=True, ip_address="198.51.100.9",
                   user_agent="UA", confirmed_at=None if i < unconfirmed else created)
            for i in range(count)
        )  # fmt: skip


def test_the_ceiling_stops_a_run_that_would_delete_too_large_a_share(settings, caplog):
    settings.PURGE_MAX_SHARE, settings.PURGE_MAX_FLOOR = 5.0, 10
    _many(300, unconfirmed=16)  # 16 of 300 = 5.3 % > 5 %
    with pytest.raises(retention.PurgeRefused, match="16 of 300"), freeze_time(NOW):
        retention.purge()
    assert Signup.objects.count() == 300  # nothing deleted
    assert not Signup.objects.filter(ip_address__isnull=False).exists()  # the harmless rules still ran
    assert "destructive rules skipped" in caplog.text
    out = StringIO()
    with pytest.raises(CommandError, match="purge refused: 16 of 300"), freeze_time(NOW):
        call_command("purge", stdout=out)
    with freeze_time(NOW):
        call_command("purge", "--force", stdout=out)
    assert Signup.objects.count() == 284


def test_a_share_under_the_ceiling_runs(settings):
    settings.PURGE_MAX_SHARE, settings.PURGE_MAX_FLOOR = 5.0, 10
    _many(300, unconfirmed=15)  # exactly 5 %
    assert _purge()["unconfirmed_deleted"] == 15


def test_a_small_list_may_lose_up_to_the_floor(settings):
    settings.PURGE_MAX_SHARE, settings.PURGE_MAX_FLOOR = 5.0, 10
    _many(20, unconfirmed=10)  # 50 %, but only 10 rows
    assert _purge()["unconfirmed_deleted"] == 10


def test_the_log_says_what_is_due_before_anything_changes_counts_only(caplog):
    _world()
    caplog.set_level("INFO", logger="users.retention")
    _purge()
    lines = [r.getMessage() for r in caplog.records if r.name == "users.retention"]
    assert lines[0] == (
        "purge due (counted before any change): unconfirmed_deleted=1, ip_user_agent_cleared=1,"
        " confirmed_ip_cleared=1, event_ips_cleared=2, withdrawn_erased=1, export_searches_cleared=1"
    )
    assert "example.com" not in caplog.text and "old-" not in caplog.text


# --- reconfirm: asking the people from before double opt-in -----------------------------------------------
def test_reconfirm_asks_each_pre_cut_over_person_once_in_their_language(settings):
    settings.DOUBLE_OPT_IN_SINCE = NOW - 365 * DAY
    settings.RECONFIRM_PER_HOUR = 3600 * 20  # one every 50 ms: the test sees them all go
    before = NOW - 400 * DAY
    people = {lang: _signup(f"old-{lang}", before, language=lang) for lang in ("de", "fr", "es", "en")}
    _signup("old-confirmed", before, confirmed=before)
    _signup("old-withdrawn", before, withdrawn=before)
    _signup("new-unconfirmed", NOW - 10 * DAY)
    tasks.email_tasks().delete()  # the confirmation emails _signup queued
    out = StringIO()
    call_command("reconfirm", stdout=out)
    assert out.getvalue().startswith("reconfirm: 4 asked")
    rows = list(tasks.email_tasks().order_by("run_after"))
    assert sorted(r.args_kwargs["kwargs"]["signup_id"] for r in rows) == sorted(p.pk for p in people.values())
    assert {r.args_kwargs["kwargs"]["kind"] for r in rows} == {emails.RECONFIRM}
    assert rows[-1].run_after - rows[0].run_after >= timedelta(milliseconds=140)  # spread, not all at once
    call_command("reconfirm", stdout=out)  # a second run asks nobody again
    assert tasks.email_tasks().count() == 4
    import time

    time.sleep(0.3)
    mail.outbox.clear()
    assert run_queue()["done"] == 4
    subjects = {m.to[0].split("@")[0]: m.subject for m in mail.outbox}
    assert subjects == {
        "old-de": "Signups: Möchten Sie weiterhin von uns hören?",
        "old-fr": "Signups: Souhaitez-vous continuer à recevoir nos nouvelles ?",
        "old-es": "Signups: ¿Todavía quiere recibir noticias nuestras?",
        "old-en": "Signups: Do you still want to hear from us?",
    }
    german = next(m for m in mail.outbox if m.to[0].startswith("old-de"))
    assert "bevor wir alle gebeten haben" in german.body and "/signup/confirm/" in german.body
