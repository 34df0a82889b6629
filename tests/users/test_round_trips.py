"""What one signup POST costs the shared services, counted by the servers themselves.

PostgreSQL's pg_stat_statements counts every statement the app's role runs on the primary (BEGIN, COMMIT
and Django's health check `SELECT 1` too); Redis's INFO commandstats counts every command (those inside a
pipeline or script too). Each person posts from their own client IP (X-Forwarded-For behind one trusted
hop), as behind the ALB.
"""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest
import redis

from devenv.servers import AppServer
from tests.conftest import SERVICES
from tests.helpers import statement_counts
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

TOKEN = "CountCountCountCountCountCount12"  # a CSRF secret: Django accepts it unmasked, matching the cookie
POSTS = 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def counted_app(django_db_setup, pg):
    # The replica monitor samples the primary's WAL position on its own clock (every REPLICA_CHECK_INTERVAL,
    # not per request): here once at start, so every statement counted below is a request's.
    env = {**SERVICES.environ(), "TRUSTED_PROXY_COUNT": "1", "LOG_LEVEL": "WARNING", "REPLICA_CHECK_INTERVAL": "600"}
    server = AppServer(env=env, workers=1, threads=1)
    server.start()
    yield server
    server.stop()


def _post(app: AppServer, n: int, prefix: str) -> urllib.error.HTTPError:
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": TOKEN, "full_name": f"Person {n}", "country": "GB",
                                   "email": f"{prefix}-{n}@example.com", "consent": "on"}).encode()  # fmt: skip
    client_ip = f"192.0.2.{n + 1}" if prefix == "count" else f"198.51.100.{n + 1}"  # one per person
    headers = {"Cookie": f"csrftoken={TOKEN}", "Connection": "close", "X-Forwarded-For": client_ip}
    req = urllib.request.Request(app.url + "/signup/", data=body, headers=headers)
    try:
        urllib.request.build_opener(_NoRedirect()).open(req, timeout=10)
    except urllib.error.HTTPError as reply:
        reply.close()
        return reply
    raise AssertionError("a signup POST must redirect")


def _redis_commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items() if "config" not in name}


def test_a_signup_post_is_one_statement_on_the_primary_and_one_redis_command(counted_app, pg, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    for n in range(3):  # warm up: connections made, statements prepared
        assert _post(counted_app, n, "warm").status == 302
    statement_counts(pg, reset=True)
    client.config_resetstat()
    replies = [_post(counted_app, n, "count") for n in range(POSTS)]
    redis_calls = _redis_commands(client)
    per_post = statement_counts(pg)
    assert [r.status for r in replies] == [302] * POSTS
    assert Signup.objects.using("default").filter(email__startswith="count-").count() == POSTS
    print(f"\nprimary statements for {POSTS} POSTs: {per_post}\nredis commands: {redis_calls}")
    # What remains per POST: the signup's own statement (row, consent event, notice stamp and outbox row in
    # one INSERT ... ON CONFLICT, autocommit) and the rate limit's SET NX of this IP's window counter.
    assert list(per_post.values()) == [POSTS]
    assert next(iter(per_post)).startswith("WITH s AS (INSERT INTO users_signup")
    assert {name: c for name, c in redis_calls.items() if name != "info"} == {"set": POSTS}
