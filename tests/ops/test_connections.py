"""Live panels: PostgreSQL connections by state on the primary and the replica, replica lag, Redis, counters."""

from __future__ import annotations

import importlib
import sys
import time

import psycopg
import pytest
from django.core.cache import cache

from ops import connections, health

pytestmark = pytest.mark.usefixtures("live_db")


def _db(live: dict, alias: str) -> dict:
    return next(db for db in live["databases"] if db["alias"] == alias)


def test_connections_by_state_on_the_primary_and_the_replica_against_max_connections(pg):
    with psycopg.connect(pg.primary_url) as idle_in_tx, psycopg.connect(pg.replica_url) as on_replica:
        idle_in_tx.execute("SELECT 1")  # psycopg opened a transaction and leaves it open: idle in transaction
        on_replica.execute("SELECT 1")
        live = connections.collect()
    primary, replica = _db(live, "default"), _db(live, "replica1")
    assert primary["error"] == "" and replica["error"] == ""
    assert primary["by_state"]["idle in transaction"] >= 1
    assert replica["by_state"].get("idle in transaction", 0) >= 1
    assert primary["by_state"]["active"] >= 1  # the query counting them
    assert primary["max_connections"] == 200 and primary["usable"] == 200 - primary["reserved"]
    assert primary["total"] == sum(primary["by_state"].values())
    assert replica["lag_bytes"] == 0 and replica["lag_seconds"] == 0


def test_replica_lag_in_bytes_and_seconds_while_replay_is_paused(client, paused_replica):
    client.post("/signup/", {"consent": "on", "full_name": "Lag Test", "email": "lag@example.com"})
    time.sleep(health.READY_CACHE_SECONDS)  # the probes' result is reused this long in each process
    replica = _db(connections.collect(), "replica1")
    assert replica["lag_bytes"] > 0 and replica["lag_seconds"] is not None


def test_redis_clients_memory_and_hit_rate(redis_server):
    cache.set("ops-test-key", 1)
    cache.get("ops-test-key")
    cache.get("ops-test-missing")
    info = connections.redis_info()
    assert info["error"] == "" and info["connected_clients"] >= 1 and info["used_memory"] > 0
    assert info["hits"] >= 1 and info["misses"] >= 1 and 0 < info["hit_rate"] < 100


def test_redis_down_is_reported_not_raised(settings):
    settings.REDIS_URL = ""
    assert connections.redis_info() == {"configured": False, "error": ""}


def test_router_counters_come_from_the_router_when_it_has_them():
    counters = importlib.import_module("project.db.counters")
    counters.reset()  # earlier tests in this process routed reads too
    counters.incr("reads", "replica1")
    counters.incr("reads", "replica1")
    shown = connections.router_counters()
    assert set(shown) == set(counters.snapshot()) and "replica1 2" in shown["reads"]


def test_router_counters_not_available_is_said_on_the_page(client, monkeypatch):
    from django.contrib.auth.models import User

    from tests.ops.test_dashboard import _on_call_group

    monkeypatch.setitem(sys.modules, "project.db.counters", None)  # as before the routing issue: no module
    assert connections.router_counters() is None
    user = User.objects.create_user("owl", password="a-long-test-password", is_staff=True)
    user.groups.add(_on_call_group())
    client.force_login(user)
    html = client.get("/ops/").content.decode()
    assert "The database router's counters are not available." in html
    assert 'id="live-db-default"' in html and 'id="live-db-replica1"' in html and 'id="live-redis"' in html
