"""The landing page's count: one COUNT for a crowd of misses, stale while refreshing, exact after its TTL.

Counted by PostgreSQL itself (pg_stat_statements on the primary and on the replica), through gunicorn.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client

from tests.helpers import Browser, statement_counts
from tests.users.mail import sign_up
from users import stats
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")
VISITORS = 50


def _counts_run(pg) -> int:
    """COUNT statements on users_signup the app ran on the primary and the replica since the last reset."""
    return sum(
        calls
        for server in (pg.primary, pg.replica)
        for query, calls in statement_counts(pg, server).items()
        if "COUNT(" in query.upper() and "users_signup" in query
    )


def _fifty_at_once(url: str) -> list[tuple[int, str]]:
    barrier, replies = threading.Barrier(VISITORS), [None] * VISITORS

    def visit(i):
        barrier.wait()
        reply = Browser(url).get("/")
        found = re.search(r'data-testid="signup-count">(\d+)<', reply.body)
        replies[i] = (reply.status, found.group(1) if found else reply.body[:200])

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(VISITORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replies


def _fifty_misses_after_a_signup(pg, app_server, confirmed: int) -> None:
    assert sign_up(Client(), email="newcomer@example.org").status_code == 302  # a signup: no count, no DEL
    pg.wait_for_replica(timeout=60)
    stats.invalidate_signup_count()  # cold: what a confirmation's commit leaves
    for server in (pg.primary, pg.replica):
        statement_counts(pg, server, reset=True)
    replies = _fifty_at_once(app_server.url)
    assert _counts_run(pg) == 1
    assert replies == [(200, str(confirmed))] * VISITORS


def test_fifty_concurrent_misses_run_one_count(pg, app_server):
    Signup.objects.create(
        full_name="Ada Lovelace", email="ada@example.com", consent=True, confirmed_at="2026-01-01T00:00Z"
    )
    _fifty_misses_after_a_signup(pg, app_server, confirmed=1)


@pytest.mark.slow
def test_fifty_concurrent_misses_run_one_count_at_a_million_rows(pg, app_server):
    call_command("seed_signups", "--count", "1000000", "--seed", "1", "--batch", "10000", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE users_signup SET confirmed_at = created_at, consent = true WHERE id % 100 = 0")
        confirmed = cursor.rowcount
    _fifty_misses_after_a_signup(pg, app_server, confirmed=confirmed)


def test_a_stale_count_is_served_while_one_caller_refreshes_and_is_exact_after_it(pg):
    cache.set(stats.COUNT_KEY, 41, stats.STALE_SECONDS)  # stale: no fresh marker
    cache.add(stats.LOCK_KEY, 1, stats.LOCK_SECONDS)  # somebody else is refreshing
    assert stats.signup_count() == 41  # served at once, no waiting, no count
    cache.delete(stats.LOCK_KEY)
    assert stats.signup_count() == 0  # the lock is free: this caller counts (nobody is confirmed)
    assert cache.get(stats.COUNT_KEY) == 0 and cache.get(stats.FRESH_KEY) == 1
    assert cache.get(stats.LOCK_KEY) is None  # released


def test_the_count_is_counted_here_when_redis_is_down(redis_server):
    Signup.objects.create(
        full_name="Ada Lovelace", email="ada@example.com", consent=True, confirmed_at="2026-01-01T00:00Z"
    )
    redis_server.stop()
    try:
        assert stats.signup_count() == 1
    finally:
        redis_server.start()
