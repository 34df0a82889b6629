"""Live numbers, not from CloudWatch: PostgreSQL connections by state, replica lag, Redis INFO, router counters.

The readiness probes (ops/health.py) run in their own threads with their deadline, while this thread counts
connections on its own persistent connections (a warm page opens no new one).
"""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections

from ops.health import PROBE_TIMEOUT_SECONDS, run_checks, summary

logger = logging.getLogger("ops.connections")

STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call")
# Client backends by state; a NULL state is a session this role may not see (grant it pg_monitor).
ACTIVITY_SQL = """
SELECT coalesce(state, 'hidden'), count(*), count(*) FILTER (WHERE application_name = %s)
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1
"""
LIMITS_SQL = "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"


def postgres(alias: str) -> dict:
    """Return connections on one database by state, against max_connections."""
    conn = connections[alias]
    out: dict = {"alias": alias, "by_state": {}, "total": 0, "app": 0, "max_connections": None, "error": ""}
    try:
        if conn.vendor != "postgresql":
            out["error"] = f"{conn.vendor}: no pg_stat_activity"
            return out
        app_name = conn.settings_dict.get("OPTIONS", {}).get("application_name", "")
        with conn.cursor() as cursor:
            cursor.execute(ACTIVITY_SQL, [app_name])
            for state, count, mine in cursor.fetchall():
                out["by_state"][state] = count
                out["total"] += count
                out["app"] += mine
            cursor.execute(LIMITS_SQL)
            out["max_connections"], out["reserved"] = cursor.fetchone()
        out["usable"] = out["max_connections"] - out["reserved"]
        out["percent"] = round(100 * out["total"] / out["usable"], 1) if out["usable"] > 0 else None
        out["warn_at"] = int(out["usable"] * 0.8)
    except Exception as exc:  # a panel reports its error, it never raises
        out["error"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        conn.close()  # a broken connection is not kept for the next request
    return out


def redis_info() -> dict:
    """Return Redis connected clients, memory and keyspace hit rate (since the server started)."""
    if not settings.REDIS_URL:
        return {"configured": False, "error": ""}
    try:
        info = cache.client.get_client(write=True).info()
    except Exception as exc:
        return {"configured": True, "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    return {
        "configured": True,
        "error": "",
        "connected_clients": info.get("connected_clients"),
        "used_memory": info.get("used_memory"),
        "maxmemory": info.get("maxmemory") or None,
        "hits": hits,
        "misses": misses,
        "hit_rate": round(100 * hits / (hits + misses), 1) if hits + misses else None,
        "evicted_keys": info.get("evicted_keys", 0),
        "version": info.get("redis_version", ""),
    }


def router_counters() -> dict | None:
    """Return this process's routing counters (project.db.counters) as text, or None where there are none."""
    try:
        snapshot = importlib.import_module("project.db.counters").snapshot
    except (ImportError, AttributeError):
        return None
    try:
        counters = snapshot()
    except Exception as exc:
        logger.warning("router counters failed: %s", exc)
        return {"error": f"{exc.__class__.__name__}: {exc}"}
    return {name: _counter_text(value) for name, value in counters.items()}


def _counter_text(value) -> str:
    """One line per counter: 12, or "replica1 10, default 2" for counters kept per alias or reason."""
    if isinstance(value, dict):
        return ", ".join(f"{k or '—'} {n}" for k, n in sorted(value.items())) or "0"
    return str(value)


def app_connections() -> dict:
    """Return how this app holds database connections (no pool: one persistent connection per thread)."""
    default = settings.DATABASES[DEFAULT_DB_ALIAS]
    return {
        "pool": "none (one persistent connection per thread and alias)",
        "conn_max_age": default.get("CONN_MAX_AGE", 0),
        "health_checks": default.get("CONN_HEALTH_CHECKS", False),
        "aliases": list(settings.DATABASES),
    }


def start_probes(timeout: float = PROBE_TIMEOUT_SECONDS) -> Future:
    """Start the readiness probes (ops/health.py) in the background, each bounded by `timeout`."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ops-ready")
    probes = pool.submit(run_checks, timeout)
    pool.shutdown(wait=False)
    return probes


def snapshot() -> dict:
    """Return connections on every database (this thread's persistent connections), Redis and the counters."""
    return {
        "ready": {"status": "unknown", "checks": {}},
        "databases": [postgres(alias) for alias in connections.settings],
        "redis": redis_info(),
        "router": router_counters(),
        "app": app_connections(),
    }


def add_readiness(live: dict, probes: Future, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict:
    """Wait for the probes; add readiness and each replica's lag (bytes, seconds) to `live`."""
    done, _ = wait([probes], timeout=timeout + 0.5)
    checks = probes.result() if done else []
    if checks:
        live["ready"] = summary(checks)
    lag = {c.name: c.detail for c in checks if c.name not in {DEFAULT_DB_ALIAS, "redis"}}
    for db in live["databases"]:
        db.update({k: lag.get(db["alias"], {}).get(k) for k in ("lag_bytes", "lag_seconds")})
    return live


def collect(timeout: float = PROBE_TIMEOUT_SECONDS) -> dict:
    """Gather everything: the probes run in their own threads while this thread counts connections."""
    probes = start_probes(timeout)
    return add_readiness(snapshot(), probes, timeout)
