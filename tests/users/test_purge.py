"""`manage.py purge` with frozen time (freezegun): it removes exactly what the retention settings say,
a second run finds nothing, and two runs at once on the real primary share the work exactly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections
from freezegun import freeze_time

from users import retention, tasks
from users.erasure import erase_signup
from users.models import ConsentEvent, Erasure, Signup, SignupExport

pytestmark = pytest.mark.usefixtures("live_db")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def periods(settings):
    settings.RETENTION_UNCONFIRMED_DAYS, settings.RETENTION_NETWORK_DAYS, settings.RETENTION_WITHDRAWN_DAYS = 30, 90, 30
    return settings


def _signup(name: str, created: datetime, *, confirmed: datetime | None = None, withdrawn: datetime | None = None):
    """A signup made at `created` (time frozen there), as the form and the confirm page leave it."""
    with freeze_time(created):
        signup = Signup.objects.create(full_name=name, email=f"{name}@example.com", consent=True,
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
            results.append(_purge())
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
    assert _purge() == dict.fromkeys(total, 0)


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
