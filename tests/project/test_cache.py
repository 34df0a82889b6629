"""The Redis circuit breaker (project/cache.py) against a real redis-server, frozen (SIGSTOP) and killed."""

import logging
import os
import signal
import statistics
import time
from contextlib import contextmanager

import pytest
from django.core.cache import cache

from devenv.servers import AppServer, RedisServer
from project.cache import FIRST_BACKOFF_SECONDS, breaker
from tests.conftest import SERVICES
from tests.helpers import Browser
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]


@contextmanager
def frozen(server: RedisServer):
    """Freeze the server: the kernel still accepts connections, nothing answers (a hung host)."""
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_a_frozen_redis_costs_one_timeout_then_every_call_skips_it(redis_server):
    cache.set("k", "v")
    with frozen(redis_server):
        first = _timed(lambda: cache.get("k"))
        rest = [_timed(lambda: cache.get("k")) for _ in range(50)]
        assert breaker.state == "open"
    assert 0.3 < first < 2.0  # the full socket timeout (REDIS_TIMEOUT 0.5 s), once
    assert max(rest) < 0.05 and sum(rest) < 0.5  # without the breaker: 50 x 0.5 s = 25 s


def test_after_the_back_off_one_call_probes_and_a_recovered_redis_closes_the_breaker(redis_server, caplog):
    with frozen(redis_server):
        cache.get("k")
    assert breaker.state == "open"
    assert cache.set("during", 1) is None and cache.get("during") is None  # skipped, not sent
    time.sleep(FIRST_BACKOFF_SECONDS + 0.1)
    assert cache.set("after", 1) is True  # the half-open probe reaches Redis
    assert breaker.state == "closed" and cache.get("after") == 1
    said = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "project.cache"]
    assert said == ["Redis unreachable", "Redis reachable again after 1.1 s"] or (
        said[0] == "Redis unreachable" and said[1].startswith("Redis reachable again") and len(said) == 2
    )


def test_a_killed_redis_logs_one_error_for_many_signups_not_three_tracebacks_each(client, redis_server, caplog):
    redis_server.stop()
    try:
        with caplog.at_level(logging.INFO):
            for n in range(20):
                reply = client.post(
                    "/signup/", {"consent": "on", "full_name": f"Ada {n}", "email": f"ada{n}@example.com"}
                )
                assert reply.status_code == 302
            assert client.get("/").status_code == 200
    finally:
        redis_server.start()
    assert Signup.objects.using("default").count() == 20  # nothing lost
    cache_records = [r for r in caplog.records if r.name in {"project.cache", "project.ratelimit"}]
    # One ERROR with the traceback when Redis went; at most one line per back-off after it (1 s, 2 s, ...).
    assert [(r.levelname, bool(r.exc_info)) for r in cache_records[:1]] == [("ERROR", True)]
    later = cache_records[1:]
    assert all(r.getMessage().startswith("Redis still unreachable") and not r.exc_info for r in later)
    assert len(later) <= 4, [r.getMessage() for r in later]
    assert not [r for r in caplog.records if r.exc_info and r.name != "project.cache"]


def test_staff_sessions_keep_working_from_the_database_while_redis_is_frozen(redis_server):
    from tests.helpers import login_staff

    staff = login_staff("desk")
    assert staff.get("/admin/").status_code == 200
    with frozen(redis_server):
        started = time.perf_counter()
        pages = [staff.get("/admin/").status_code for _ in range(10)]
        took = time.perf_counter() - started
    assert pages == [200] * 10  # cached_db: the session came from PostgreSQL
    assert took < 3.0  # one socket timeout, not ten or more


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _signup_times(app: AppServer, count: int, tag: str) -> list[float]:
    times = []
    for n in range(count):
        browser = Browser(app.url)
        token = browser.csrf_token()
        started = time.perf_counter()
        reply = browser.post_form(
            "/signup/", {"consent": "on", "full_name": f"Grace {tag}{n}", "email": f"{tag}{n}@example.com"}, token
        )
        times.append(time.perf_counter() - started)
        assert reply.status == 200 and "Thank you" in reply.body
    return times


def test_signup_p50_with_a_frozen_redis_stays_within_twice_normal(own_redis, django_db_setup):
    env = {**SERVICES.environ(), "REDIS_URL": own_redis.url, "SIGNUP_RATE_LIMIT": "1000/600"}
    app = AppServer(env=env, workers=2, threads=4)
    app.start()
    try:
        _signup_times(app, 4, "warm")
        normal = _signup_times(app, 30, "n")
        with frozen(own_redis):
            hung = _signup_times(app, 30, "f")
    finally:
        app.stop()
    p50_normal, p50_hung = statistics.median(normal), statistics.median(hung)
    print(f"\nsignup p50: normal {p50_normal * 1000:.0f} ms, Redis frozen {p50_hung * 1000:.0f} ms "
          f"(x{p50_hung / p50_normal:.2f}); slowest while frozen {max(hung) * 1000:.0f} ms")  # fmt: skip
    assert p50_hung < 2 * p50_normal + 0.02  # 20 ms of slack for a loaded machine at single-digit ms
    assert Signup.objects.using("default").filter(email__startswith="f").count() == 30
