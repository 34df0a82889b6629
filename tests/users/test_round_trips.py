"""What one signup POST costs the shared services, counted by the servers themselves.

PostgreSQL's pg_stat_statements counts every statement the app's role runs on the primary (BEGIN, COMMIT
and Django's health check `SELECT 1` too); Redis's INFO commandstats counts every command (those inside a
pipeline or script too). Each person posts from their own client IP (X-Forwarded-For behind one trusted
hop), as behind the ALB.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from unittest import mock

import pytest
import redis
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from devenv.servers import AppServer
from tests.conftest import SERVICES
from tests.helpers import statement_counts
from users import signup_store
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

TOKEN = "CountCountCountCountCountCount12"  # a CSRF secret: Django accepts it unmasked, matching the cookie
POSTS = 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


COUNTED_ROLE = "signup_counted"  # this server's own role: other servers of the session do not count


@pytest.fixture(scope="module")
def counted_app(django_db_setup, django_db_blocker, pg):
    password = secrets.token_urlsafe(18)
    with (
        django_db_blocker.unblock(),
        override_settings(DATABASE_APP_ROLE=COUNTED_ROLE),
        mock.patch.dict(os.environ, {"DATABASE_APP_PASSWORD": password}),
    ):
        call_command("setup_db_roles", verbosity=0)
    urls = [
        f"postgres://{COUNTED_ROLE}:{password}@127.0.0.1:{server.port}/{pg.db}" for server in (pg.primary, pg.replica)
    ]
    # The replica monitor samples the primary's WAL position on its own clock (every REPLICA_CHECK_INTERVAL,
    # not per request): here once at start, so every statement counted below is a request's. A loaded test
    # machine may leave a second between two POSTs: the health check of an idle connection (default 1 s,
    # test_an_idle_connection_is_checked_first...) is kept out of the count by a longer idle time.
    env = {**SERVICES.environ(), "DATABASE_URL": urls[0], "DATABASE_REPLICA_URLS": urls[1],
           "DATABASE_APP_ROLE": COUNTED_ROLE, "TRUSTED_PROXY_COUNT": "1", "LOG_LEVEL": "WARNING",
           "REPLICA_CHECK_INTERVAL": "600", "DATABASE_HEALTH_CHECK_IDLE": "60"}  # fmt: skip
    server = AppServer(env=env, workers=1, threads=1)
    server.start()
    yield server
    server.stop()


def _post(app: AppServer, n: int, prefix: str, extra: dict | None = None) -> urllib.error.HTTPError:
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": TOKEN, "full_name": f"Person {n}", "country": "GB",
                                   "email": f"{prefix}-{n}@example.com", "consent": "on", "form_version": 0,
                                   **(extra or {})},
                                  doseq=True).encode()  # fmt: skip
    client_ip = f"192.0.2.{n + 1}" if prefix in ("count", "fields") else f"198.51.100.{n + 1}"  # one per person
    headers = {"Cookie": f"csrftoken={TOKEN}", "Connection": "close", "X-Forwarded-For": client_ip}
    req = urllib.request.Request(app.url + "/signup/", data=body, headers=headers)
    try:
        urllib.request.build_opener(_NoRedirect()).open(req, timeout=10)
    except urllib.error.HTTPError as reply:
        reply.close()
        return reply
    raise AssertionError("a signup POST must redirect")


def _settle(app: AppServer, pg) -> None:
    """Wait for the app's replica monitor to settle, once per app server (it samples at start only)."""
    if not getattr(app, "monitor_settled", False):
        _monitor_settled(pg)
        app.monitor_settled = True  # a later test of the module finds no samples: the counts were reset since


def _monitor_settled(pg, timeout: float = 15.0) -> None:
    """Wait until the replica monitor's first samples of the primary are done (its thread starts with a request)."""
    sampled = [0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = sum(
            c for q, c in statement_counts(pg, role=COUNTED_ROLE).items() if q.startswith("SELECT pg_current_wal_lsn()")
        )
        if calls and calls == sampled[-1]:
            return
        sampled.append(calls)
        time.sleep(1.0)
    raise AssertionError(f"the replica monitor did not settle: samples seen {sampled}")


def _redis_commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items() if "config" not in name}


def test_a_signup_post_is_one_statement_on_the_primary_and_one_redis_command(counted_app, pg, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    for n in range(3):  # warm up: connections made, statements prepared
        assert _post(counted_app, n, "warm").status == 302
    _settle(counted_app, pg)
    statement_counts(pg, reset=True)
    client.config_resetstat()
    replies = [_post(counted_app, n, "count") for n in range(POSTS)]
    redis_calls = _redis_commands(client)
    per_post = statement_counts(pg, role=COUNTED_ROLE)
    assert [r.status for r in replies] == [302] * POSTS
    assert Signup.objects.using("default").filter(email__startswith="count-").count() == POSTS
    print(f"\nprimary statements for {POSTS} POSTs: {per_post}\nredis commands: {redis_calls}")
    # What remains per POST: the signup's own statement (row, consent event, notice stamp and outbox row in
    # one INSERT ... ON CONFLICT, autocommit) and the rate limit's SET NX of this IP's window counter.
    assert list(per_post.values()) == [POSTS]
    assert next(iter(per_post)).startswith("WITH s AS (INSERT INTO users_signup")
    assert {name: c for name, c in redis_calls.items() if name != "info"} == {"set": POSTS}


def test_with_three_staff_fields_a_signup_post_is_still_one_statement_and_one_redis_command(
    counted_app, pg, redis_server
):
    from tests.formdef.fields import define

    version = define(["company", "source", "member"])
    extra = {"form_version": version.id, "f_company": "ACME", "f_source": "web", "f_member": "yes"}
    client = redis.Redis.from_url(redis_server.url)
    for n in range(3):  # warm up: the version read once by the app's process, statements prepared
        assert _post(counted_app, n, "warm3", extra).status == 302
    _settle(counted_app, pg)
    statement_counts(pg, reset=True)
    client.config_resetstat()
    replies = [_post(counted_app, n, "fields", extra) for n in range(POSTS)]
    redis_calls = _redis_commands(client)
    per_post = statement_counts(pg, role=COUNTED_ROLE)
    assert [r.status for r in replies] == [302] * POSTS
    stored = Signup.objects.using("default").filter(email__startswith="fields-")
    assert [row.answers for row in stored] == [{"company": "ACME", "source": "web", "member": True}] * POSTS
    assert {row.form_version for row in stored} == {version.id}
    print(f"\nwith three fields, primary statements for {POSTS} POSTs: {per_post}\nredis commands: {redis_calls}")
    assert list(per_post.values()) == [POSTS]
    assert next(iter(per_post)).startswith("WITH s AS (INSERT INTO users_signup")
    assert {name: c for name, c in redis_calls.items() if name != "info"} == {"set": POSTS}


def test_an_idle_connection_is_checked_first_and_a_busy_one_is_not():
    from django.db import connection

    from project.db.postgresql import base

    connection.ensure_connection()
    checks = []
    with (
        mock.patch.object(base.DatabaseWrapper, "is_usable", lambda self: checks.append(1) or True),
        override_settings(DATABASE_HEALTH_CHECK_IDLE=0.5),
    ):
        connection.health_check_done = False
        connection.cursor().execute("SELECT 1")  # answered a moment ago (connecting): no check
        assert checks == []
        time.sleep(0.6)
        connection.health_check_done = False  # a new request
        connection.cursor().execute("SELECT 1")
    assert checks == [1]


@pytest.mark.parametrize("binding, prepared", [(True, True), (False, False)])
def test_the_signup_statement_is_prepared_on_its_connection_only_with_server_binding(pg, binding, prepared):
    from django.db import connection

    with override_settings(DATABASE_SERVER_BINDING=binding):
        for i in range(8):  # more runs than psycopg's prepare_threshold (5)
            signup = Signup(full_name="P", email=f"p{i}-{binding}@example.com", country="GB")
            signup_store.store(signup, ip="198.51.100.9", notice_after=timedelta(hours=1))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'WITH s AS (INSERT%%'")
            assert (cursor.fetchone()[0] > 0) is prepared


@pytest.mark.parametrize("binding", [True, False])
def test_topics_are_stored_as_chosen_whatever_their_wording_and_binding(pg, binding):
    from formdef.models import Topic

    # Array literals are built by signup_store._topic_arrays: quotes, backslashes, commas and braces survive.
    wordings = ['a"b', "back\\slash", "comma,brace}{", "plain:en:0123abcd"]
    topics = [Topic.objects.using("default").create(key=f"t{n}-{binding}", name={"en": "T"}, consent={"en": "C"})
              for n in range(len(wordings))]  # fmt: skip
    with override_settings(DATABASE_SERVER_BINDING=binding):
        signup = Signup(full_name="P", email=f"topics-{binding}@example.com", country="GB", consent=True,
                        consent_at=timezone.now() - timedelta(seconds=5), consent_version="form:en:1")  # fmt: skip
        chosen = [(t.pk, w) for t, w in zip(topics, wordings, strict=True)]
        assert signup_store.store(signup, ip="198.51.100.9", notice_after=timedelta(hours=1), topics=chosen)
    stored = Signup.objects.using("default").get(email=f"topics-{binding}@example.com")
    held = dict(stored.memberships.values_list("topic_id", "wording_version"))
    assert held == dict(chosen)
    given = stored.events.filter(kind="given").values_list("topic_id", "wording_version", "at", "ip")
    at, ip = signup.consent_at, "198.51.100.9"
    assert sorted(given, key=lambda g: g[0] or 0) == [
        (None, "form:en:1", at, ip),
        *[(pk, w, at, ip) for pk, w in chosen],
    ]
    assert {m.chosen_at for m in stored.memberships.all()} == {at}
