"""Bounded database waits on real hangs: a frozen server (SIGSTOP: TCP still ACKed) and a vanished host.

Each test runs on its own throwaway cluster (the session's stays untouched) and thaws what it froze.
"""

import json
import os
import socket
import statistics
import threading
import time

import psycopg
import pytest

from devenv.servers import AppServer
from project.db import bounds
from tests.helpers import Browser
from tests.project.clusters import destroy_cluster, make_cluster

pytestmark = pytest.mark.slow

READY_TOKEN = "test-ready-token-" + "x" * 20
FAST_ROUTING = {"REPLICA_CHECK_INTERVAL": "0.2", "REPLICA_RETRY_SECONDS": "1", "REPLICA_MAX_LAG": "60"}


@pytest.fixture(scope="module")
def cluster(django_db_setup):
    pg, env = make_cluster(replicas=2)
    yield pg, env
    destroy_cluster(pg)


@pytest.fixture
def frozen_primary(cluster):
    pg, _ = cluster
    yield pg
    pg.primary.thaw()


def _sockopt(connection, level: int, name: int) -> int:
    with socket.socket(fileno=os.dup(connection.fileno())) as sock:
        return sock.getsockopt(level, name)


def test_every_connection_has_keepalives_a_tcp_user_timeout_and_the_roles_server_timeouts(
    cluster, settings, django_db_blocker
):
    pg, _ = cluster
    from django.db import connections

    from project.db.postgresql.base import DatabaseWrapper
    from project.env import database_config

    config = database_config("DATABASE_URL", pg.primary_url, conn_max_age=0, connect_timeout=3,
                             tls={"sslmode": "disable"}, bounds=settings.DATABASE_BOUNDS)  # fmt: skip
    wrapper = DatabaseWrapper(connections.configure_settings({"default": config})["default"], alias="bounds-probe")
    with django_db_blocker.unblock():
        wrapper.ensure_connection()
    try:
        raw = wrapper.connection
        assert _sockopt(raw, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert _sockopt(raw, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == settings.DATABASE_BOUNDS["keepalives_idle"]
        assert _sockopt(raw, socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
        assert _sockopt(raw, socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert _sockopt(raw, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 15000
    finally:
        wrapper.close()
    # Without any option the app's role still gets its timeouts: setup_db_roles set them on the role.
    with psycopg.connect(pg.primary_url) as plain:
        assert plain.execute("SHOW statement_timeout").fetchone()[0] == "5s"
        assert plain.execute("SHOW lock_timeout").fetchone()[0] == "3s"


def test_connect_timeout_bounds_a_frozen_postmaster(frozen_primary):
    frozen_primary.primary.freeze()
    started = time.monotonic()
    with pytest.raises(psycopg.errors.ConnectionTimeout):
        psycopg.connect(frozen_primary.primary_url, connect_timeout=2)
    took = time.monotonic() - started
    print(f"connect to a frozen postmaster gave up after {took:.2f} s (connect_timeout=2)")
    assert 1.5 < took < 4


def test_a_kept_connection_to_a_frozen_server_ends_at_the_client_deadline_then_fails_fast(frozen_primary, monkeypatch):
    from project.db.postgresql.base import _Driver

    monkeypatch.setattr(bounds, "BACKOFF_FIRST", 0.5)
    breaker = bounds.of("frozen-probe")
    connection = _Driver().connect(frozen_primary.primary_url, connect_timeout=2, autocommit=True)
    connection.bounds = breaker
    assert connection.execute("SELECT 1").fetchone() == (1,)
    frozen_primary.primary.freeze()
    started = time.monotonic()
    with bounds.bounded(1.0), pytest.raises(bounds.DatabaseDeadline):
        connection.execute("SELECT 1")
    took = time.monotonic() - started
    assert 0.9 < took < 2.5, took
    assert connection.closed and breaker.state() == "open"
    started = time.monotonic()
    with pytest.raises(bounds.CircuitOpen):  # the next caller does not wait at all
        breaker.admit()
    assert time.monotonic() - started < 0.05
    frozen_primary.primary.thaw()
    time.sleep(0.6)
    fresh = _Driver().connect(frozen_primary.primary_url, connect_timeout=2, autocommit=True)
    fresh.bounds = breaker
    assert fresh.execute("SELECT 1").fetchone() == (1,)  # the half-open probe succeeds and closes the breaker
    assert breaker.state() == "closed"
    fresh.close()
    bounds.reset()
    print(f"a kept connection to a frozen server raised after {took:.2f} s (limit 1 s)")


def _post_signup(app: AppServer, token_browser: Browser, token: str, email: str) -> tuple[int, float, str]:
    started = time.monotonic()
    reply = token_browser.post_form(
        "/signup/", {"consent": "on", "full_name": "Frozen Primary", "email": email}, token=token
    )
    return reply.status, time.monotonic() - started, reply.body


def test_a_frozen_primary_gets_signups_the_friendly_503_within_10s_and_health_keeps_answering(frozen_primary, cluster):
    pg, env = cluster
    app = AppServer(env={**env, **FAST_ROUTING}, workers=1, threads=4)
    app.start()
    try:
        browsers = [Browser(app.url) for _ in range(12)]
        tokens = [b.csrf_token() for b in browsers]  # the form, fetched while the primary answers
        pg.primary.freeze()
        results: list[tuple[int, float, str]] = []
        health: list[float] = []
        done = threading.Event()

        def sign_up(i: int) -> None:
            results.append(_post_signup(app, browsers[i], tokens[i], f"frozen{i}@example.com"))

        def probe_health() -> None:
            while not done.is_set():
                started = time.monotonic()
                assert Browser(app.url).get("/health").status == 200
                health.append(time.monotonic() - started)
                time.sleep(0.2)

        prober = threading.Thread(target=probe_health)
        prober.start()
        started = time.monotonic()
        threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        all_answered = time.monotonic() - started
        done.set()
        prober.join()
        statuses = sorted(status for status, _, _ in results)
        waits = sorted(took for _, took, _ in results)
        print(f"frozen primary: 12 signups answered {statuses} in {all_answered:.2f} s; each waited "
              f"p50 {statistics.median(waits):.2f} s, max {waits[-1]:.2f} s; /health max {max(health):.2f} s "
              f"over {len(health)} probes")  # fmt: skip
        assert statuses == [503] * 12
        assert all("nothing was stored" in body.lower() or "try again" in body.lower() for _, _, body in results)
        assert waits[-1] < 10
        assert max(health) < 2  # a thread always stays free of the database
        # Once the server wakes, signups are taken again within the breaker's longest back-off.
        pg.primary.thaw()
        woke = time.monotonic()
        browser = Browser(app.url)
        while True:
            reply = browser.post_form(
                "/signup/", {"consent": "on", "full_name": "After Thaw", "email": "thaw@example.com"}
            )
            if reply.status == 200:
                break
            assert time.monotonic() - woke < bounds.BACKOFF_MAX + 8, reply.status
            time.sleep(0.5)
        print(f"signups taken again {time.monotonic() - woke:.2f} s after SIGCONT")
    finally:
        pg.primary.thaw()
        app.stop()


def _ready(app: AppServer) -> dict:
    return json.loads(Browser(app.url, headers={"Authorization": f"Bearer {READY_TOKEN}"}).get("/ready").body)


def test_a_frozen_replica_sends_reads_to_the_primary_with_no_request_over_10s(cluster):
    pg, env = cluster
    app_env = {**env, **FAST_ROUTING, "DATABASE_REPLICA_URLS": pg.url(pg.replica), "READY_TOKEN": READY_TOKEN}
    app = AppServer(env=app_env, workers=1, threads=4)
    app.start()
    try:
        author = Browser(app.url)
        assert (
            author.post_form(
                "/signup/", {"consent": "on", "full_name": "Frozen Replica", "email": "fr@example.com"}
            ).status
            == 200
        )
        pg.wait_for_replica()
        author.jar.clear(domain="127.0.0.1", path="/", name="db_position")  # reads may go to the replica
        deadline = time.monotonic() + 10
        while not _ready(app)["routing"]["replicas"]["replica1"]["serving"]:
            assert time.monotonic() < deadline, _ready(app)["routing"]
            time.sleep(0.2)
        replies: list[tuple[int, float]] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                started = time.monotonic()
                reply = author.get("/signup/thanks/")
                ok = reply.status == 200 and "Thank you, Frozen Replica" in reply.body
                replies.append((200 if ok else reply.status, time.monotonic() - started))

        threads = [threading.Thread(target=reader) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(1)
        pg.replica.freeze()
        time.sleep(12)
        routing = _ready(app)["routing"]
        stop.set()
        for t in threads:
            t.join()
        waits = sorted(took for _, took in replies)
        bad = [status for status, _ in replies if status != 200]
        print(f"frozen replica: {len(replies)} reads, {len(bad)} not 200, p50 {statistics.median(waits):.3f} s, "
              f"max {waits[-1]:.2f} s; replica1 {routing['replicas']['replica1']}")  # fmt: skip
        assert bad == []
        assert waits[-1] < 10
        assert not routing["replicas"]["replica1"]["serving"]
        pg.replica.thaw()
        woke = time.monotonic()
        while not _ready(app)["routing"]["replicas"]["replica1"]["serving"]:
            assert time.monotonic() - woke < 15, _ready(app)["routing"]
            time.sleep(0.2)
        print(f"replica1 serving again {time.monotonic() - woke:.2f} s after SIGCONT")
    finally:
        pg.replica.thaw()
        app.stop()


@pytest.fixture
def extra_replicas(cluster, django_db_blocker):
    """This process's router also knows the cluster's two standbys (as replica-a and replica-b)."""
    from django.db import connections

    from project.db.monitor import monitor
    from project.env import database_config

    pg, _ = cluster
    names = {"replica-a": pg.standbys[0], "replica-b": pg.standbys[1]}
    for alias, server in names.items():
        config = database_config("DATABASE_REPLICA_URLS", pg.url(server, owner=True), conn_max_age=60,
                                 connect_timeout=3, tls={"sslmode": "disable"})  # fmt: skip
        connections.settings[alias] = connections.configure_settings({"default": config})["default"]
    monitor.reset()
    with django_db_blocker.unblock():
        yield pg
    for alias in names:
        del connections.settings[alias]
    monitor.reset()


def test_one_hung_replica_does_not_stop_the_sampling_of_the_others(extra_replicas):
    from project.db.monitor import PROBE_TIMEOUT, monitor

    pg = extra_replicas
    monitor.refresh()
    assert all(monitor.describe()[alias]["error"] == "" for alias in ("replica1", "replica-a", "replica-b"))
    pg.standbys[1].freeze()
    try:
        rounds = []
        for _ in range(3):
            started = time.monotonic()
            monitor.refresh()
            rounds.append(time.monotonic() - started)
            described = monitor.describe()
            # The others were sampled in this very round.
            assert described["replica1"]["sampled_seconds_ago"] < 0.5 and described["replica1"]["error"] == ""
            assert described["replica-a"]["sampled_seconds_ago"] < 0.5 and described["replica-a"]["error"] == ""
            assert described["replica-b"]["reason"] == "down"
        print(f"sampling rounds with one frozen replica took {', '.join(f'{r:.2f}' for r in rounds)} s "
              f"(probe timeout {PROBE_TIMEOUT} s); replica-b: {described['replica-b']['error']}")  # fmt: skip
        assert max(rounds) < PROBE_TIMEOUT + 1
    finally:
        pg.standbys[1].thaw()
