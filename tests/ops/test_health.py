"""/health (the load balancer's: the process, nothing else) and /ready (on-call's: every dependency)."""

import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from devenv.servers import LOCAL_READY_TOKEN, AppServer
from ops import health
from tests.conftest import SERVICES
from tests.helpers import Browser, login_staff

pytestmark = pytest.mark.usefixtures("live_db")
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {LOCAL_READY_TOKEN}"}


@pytest.fixture
def connection_log(pg):
    """Log every new connection on the primary and the replica; yield a counter of the app's new ones."""
    servers = (pg.primary, pg.replica)
    for s in servers:  # ALTER SYSTEM is per server: it is not replicated
        pg.admin_sql("ALTER SYSTEM SET log_connections = on", "SELECT pg_reload_conf()", server=s)
    time.sleep(0.3)  # the reload reaches the postmaster asynchronously
    offsets = {s.datadir.name: s.log.stat().st_size for s in servers}

    def new_connections() -> dict:
        counts = {}
        for s in servers:
            with s.log.open("rb") as f:
                f.seek(offsets[s.datadir.name])
                lines = f.read().decode(errors="replace").splitlines()
            counts[s.datadir.name] = sum("connection authorized" in ln and "signup-app" in ln for ln in lines)
        return counts

    yield new_connections
    for s in servers:
        pg.admin_sql("ALTER SYSTEM RESET log_connections", "SELECT pg_reload_conf()", server=s)


def test_ready_detail_reports_every_dependency_with_timings(client, pg):
    response = client.get("/ready", **AUTH)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    doc = response.json()
    assert doc["status"] == "ok"
    assert set(doc["checks"]) == {"default", "replica1", "redis"}
    for check in doc["checks"].values():
        assert check["status"] == "up" and check["ms"] > 0
    assert doc["checks"]["default"]["critical"] is True
    assert doc["checks"]["replica1"]["detail"]["lag_bytes"] == 0
    assert doc["checks"]["redis"]["detail"]["breaker"] == "closed"
    assert doc["routing"]["pid"]
    assert doc["routing"]["databases"]["default"] == {"breaker": "closed", "tripped": 0}


def test_ready_shows_replica_lag_in_bytes_while_replay_is_paused(client, paused_replica):
    client.post("/signup/", {"consent": "on", "full_name": "Lag Test", "email": "lag@example.com"})
    time.sleep(health.READY_CACHE_SECONDS)  # past the cached result
    replica = client.get("/ready", **AUTH).json()["checks"]["replica1"]
    assert replica["status"] == "up"
    assert replica["detail"]["lag_bytes"] > 0


def test_anonymous_ready_answers_the_status_and_nothing_else(client):
    response = client.get("/ready")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_wrong_token_gets_the_status_only(client):
    for header in (f"Bearer {LOCAL_READY_TOKEN}x", f"Bearer {LOCAL_READY_TOKEN[:-1]}", "Basic abc", "Bearer"):
        assert client.get("/ready", HTTP_AUTHORIZATION=header).json() == {"status": "ok"}


def test_staff_session_sees_the_detail_and_other_users_do_not(client):
    assert "checks" in login_staff("oncall").get("/ready").json()
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("visitor", password="a-long-test-password"))
    assert client.get("/ready").json() == {"status": "ok"}


def test_health_touches_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200 and response.content == b"ok\n"


def test_health_says_503_while_draining(client):
    health.start_draining()
    try:
        response = client.get("/health")
        assert response.status_code == 503 and response.content == b"draining\n"
        assert client.get("/ready").status_code == 200  # the deep check is about dependencies, not this
    finally:
        health._draining.clear()


def test_ready_is_not_cacheable_and_answers_head(client):
    assert client.head("/ready").status_code == 200
    assert "max-age=0" in client.get("/ready")["Cache-Control"]


def test_ready_probes_reuse_their_connections_even_uncached(connection_log):
    health.run_checks(max_age=0)  # the probe threads connect once
    before = connection_log()
    for _ in range(30):
        checks = health.run_checks(max_age=0)
        assert all(c.status == "up" for c in checks)
    assert connection_log() == before


def test_200_ready_calls_open_at_most_a_handful_of_connections(app_server, connection_log):
    """Before: each call opened one connection per database (2,000 calls, 4,000 connections)."""
    statuses = [Browser(app_server.url).get("/ready").status for _ in range(200)]
    new = connection_log()
    print(f"\n200 /ready calls through gunicorn (2 workers): new PostgreSQL connections {new}")
    assert statuses == [200] * 200
    assert sum(new.values()) <= 8  # at most one probe and one monitor connection per worker and database


def test_gunicorn_sigterm_drains_with_health_503_while_other_pages_still_answer(django_db_setup):
    server = AppServer(env={**SERVICES.environ(), "DRAIN_SECONDS": "3"}, workers=1, threads=2)
    server.start()
    try:
        assert _status(server.url + "/health") == 200
        server.proc.send_signal(signal.SIGTERM)
        deadline, seen = time.monotonic() + 2.5, set()
        while time.monotonic() < deadline:
            seen.add((_status(server.url + "/health"), _status(server.url + "/signup/")))
            time.sleep(0.1)
        assert (503, 200) in seen
        assert server.proc.wait(timeout=20) == 0  # then it stops as gunicorn always did
    finally:
        server.stop()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def test_ready_detail_through_gunicorn_needs_the_token(app_server):
    anonymous = json.loads(Browser(app_server.url).get("/ready").body)
    assert anonymous == {"status": "ok"}
    detailed = json.loads(
        Browser(app_server.url, headers={"Authorization": f"Bearer {LOCAL_READY_TOKEN}"}).get("/ready").body
    )
    assert detailed["checks"]["default"]["status"] == "up" and "wal_lsn" in detailed["checks"]["default"]["detail"]


def _server_pids(server) -> list[int]:
    """The postmaster of `server` and all its children (backends, walreceiver, ...)."""
    import subprocess

    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def test_a_frozen_replica_costs_ready_one_deadline_and_never_piles_up_probe_threads(pg):
    import os
    import threading

    health.run_checks(max_age=0)  # the probe threads hold their connections
    pids = _server_pids(pg.replica)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        took, checks = [], None
        for _ in range(3):
            started = time.perf_counter()
            checks = {c.name: c for c in health.run_checks(max_age=0)}
            took.append(time.perf_counter() - started)
        probe_threads = [t for t in threading.enumerate() if t.name == "ready-replica1"]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert max(took) < health.PROBE_TIMEOUT_SECONDS + 1.0
    # Its probe times out, or (past the 6 s client deadline) that deadline or the database's breaker fails it.
    assert checks["replica1"].error == "timed out" or any(
        text in checks["replica1"].error for text in ("hung recently", "did not answer within")
    )
    assert checks["default"].status == "up"
    assert health.status(list(checks.values())) == "degraded"  # a replica is not critical: still 200
    assert len(probe_threads) == 1  # the stuck probe was not started again
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # it recovers once the server wakes
        if all(c.status == "up" for c in health.run_checks(max_age=0)):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the replica's probe did not recover after SIGCONT")
