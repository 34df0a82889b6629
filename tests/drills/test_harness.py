"""The drills' harness itself (drills/): its loss counter, load generator and fault primitives really work."""

import socket
import subprocess
import threading
import time

import pytest

from devenv.servers import RedisServer, process_state
from drills.endpoint import Endpoint
from drills.faults import (
    PG_SSL_REQUEST,
    REDIS_PING,
    answers,
    freeze,
    freeze_postgres,
    kill_redis,
    refuses,
    thaw,
    thaw_postgres,
)
from drills.harness import missing_acknowledged, owner_url
from drills.load import Load, Record
from drills.report import percentile, summarise
from drills.slow_clients import SlowClients


def test_loss_counter_counts_an_acknowledged_signup_deleted_afterwards(app_server, pg, live_db):
    from users.models import Signup

    load = Load("127.0.0.1", app_server.port, "harness")
    assert [load.signup() for _ in range(3)] == ["302"] * 3
    assert len(load.acknowledged) == 3
    # each acknowledged signup's thank-you page found its row
    assert [r.status for r in load.records if r.kind == "thanks"] == ["200"] * 3
    url = owner_url(pg, pg.primary)
    assert missing_acknowledged(url, load.acknowledged) == []
    Signup.objects.using("default").filter(email=load.acknowledged[1]).delete()
    assert missing_acknowledged(url, load.acknowledged) == [load.acknowledged[1]]


def test_a_refused_post_is_not_counted_as_acknowledged():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    load = Load("127.0.0.1", port, "refused")  # nothing listens there now
    assert load.signup() == "refused"
    assert load.acknowledged == [] and [r.kind for r in load.records] == ["signup"]


def test_open_loop_load_keeps_sending_while_the_server_hangs_and_records_timeouts():
    with socket.create_server(("127.0.0.1", 0), backlog=128) as hung:  # accepts, never answers
        load = Load("127.0.0.1", hung.getsockname()[1], "hung", timeout=0.5)
        load.start()
        time.sleep(1.2)
        waited = load.stop()
    kinds = {r.kind for r in load.records}
    assert {"home", "form", "signup", "health"} <= kinds
    assert len(load.records) >= 10  # not one request per stream and then silence
    assert {r.status for r in load.records} == {"timeout"}
    assert all(0.4 < r.seconds < 2 for r in load.records) and waited < 3


def test_figures_per_phase_and_nearest_rank_percentiles():
    assert percentile(list(range(1, 101)), 50) == 50 and percentile(list(range(1, 101)), 99) == 99
    records = [Record(1.0, "signup", 0.02, "302"), Record(5.0, "signup", 9.0, "timeout"),
               Record(6.0, "health", 0.01, "200"), Record(12.0, "signup", 0.03, "503")]  # fmt: skip
    summary = summarise(records, fault_start=4.0, fault_end=10.0)
    assert summary["baseline"]["signup"]["sent"] == 1 and summary["baseline"]["signup"]["failed"] == 0
    assert summary["fault"]["signup"]["failed_by_status"] == {"timeout": 1}
    assert summary["fault"]["all"]["sent"] == 2 and summary["fault"]["signup"]["max_ms"] == 9000
    assert summary["recovery"]["signup"]["failed_by_status"] == {"503": 1}
    assert summary["all"]["failed"] == 2


def test_freeze_stops_a_process_and_thaw_continues_it():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        freeze([proc.pid])
        assert process_state(proc.pid) == "T"
        thaw([proc.pid])
        deadline = time.monotonic() + 5  # SIGCONT is delivered asynchronously (a loaded machine shows D first)
        while process_state(proc.pid) not in {"S", "R"} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_state(proc.pid) in {"S", "R"}
    finally:
        proc.kill()
        proc.wait()


def test_frozen_postgres_accepts_connections_but_answers_nothing_until_thawed(pg):
    assert answers(pg.replica.port, PG_SSL_REQUEST)
    pids = freeze_postgres(pg.replica)
    try:
        assert len(pids) >= 3  # postmaster, startup process, walreceiver, ...
        # stopped; a backend that had just exited stays a zombie its frozen postmaster cannot reap
        assert {process_state(pid) for pid in pids} <= {"T", "Z"} and process_state(pids[0]) == "T"
        assert not answers(pg.replica.port, PG_SSL_REQUEST, timeout=0.5)
        assert not refuses(pg.replica.port)  # the kernel still completes the handshake
    finally:
        thaw_postgres(pids)
    assert process_state(pids[0]) in {"S", "R"}
    assert answers(pg.replica.port, PG_SSL_REQUEST)
    pg.wait_for_replica()


@pytest.fixture
def own_redis(tmp_path, redis_server):  # redis_server: skip (or fail under CI) without redis-server
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    thaw([server.proc.pid] if server.proc else [])
    server.stop()


def test_frozen_redis_leaves_ping_unanswered_and_a_killed_one_refuses(own_redis):
    assert answers(own_redis.port, REDIS_PING)
    freeze([own_redis.proc.pid])
    assert not answers(own_redis.port, REDIS_PING, timeout=0.5)
    thaw([own_redis.proc.pid])
    assert answers(own_redis.port, REDIS_PING)
    kill_redis(own_redis)
    assert refuses(own_redis.port)
    own_redis.start()
    assert answers(own_redis.port, REDIS_PING)


def _greeter(letter: bytes) -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(letter)
            threading.Thread(target=conn.recv, args=(1,), daemon=True).start()  # keep it open

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_endpoint_switch_drops_open_connections_and_leads_new_ones_to_the_new_server():
    a, b = _greeter(b"A"), _greeter(b"B")
    endpoint = Endpoint(a.getsockname()[1])
    try:
        old = socket.create_connection(("127.0.0.1", endpoint.port), timeout=2)
        assert old.recv(1) == b"A"
        endpoint.switch(b.getsockname()[1])
        assert old.recv(1) == b""  # dropped, as on a failover
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=2) as new:
            assert new.recv(1) == b"B"
    finally:
        endpoint.close()
        a.close()
        b.close()


def test_slow_clients_stay_open_while_the_server_waits_for_their_bodies():
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:  # never reads: bodies never complete
        slow = SlowClients()
        slow.port = server.getsockname()[1]
        slow.open()
        try:
            assert slow.states() == {"held": 30}
        finally:
            slow.close()
