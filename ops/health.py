"""Readiness probes: one function per dependency, each returning its status and milliseconds.

They run concurrently with a deadline; each thread closes the database connection it opened (Django's
connections are per thread), as django-health-check does.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections

from project.db import counters
from project.db.monitor import monitor

logger = logging.getLogger("ops.health")

UP, DOWN, DEGRADED, SKIPPED = "up", "down", "degraded", "not configured"
PROBE_TIMEOUT_SECONDS = 2.5


@dataclass
class Check:
    name: str
    critical: bool
    status: str = DOWN
    ms: float = 0.0
    error: str = ""
    detail: dict = field(default_factory=dict)


def _lsn_to_int(lsn: str | None) -> int | None:
    if not lsn:
        return None
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _query(alias: str, sql: str) -> tuple:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        connections[alias].close()


def probe_primary() -> Check:
    check = Check(DEFAULT_DB_ALIAS, critical=True)
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        _query(DEFAULT_DB_ALIAS, "SELECT 1")
        check.status = UP
        return check
    in_recovery, lsn = _query(DEFAULT_DB_ALIAS, "SELECT pg_is_in_recovery(), pg_current_wal_lsn()::text")
    if in_recovery:  # writes would fail: a failover is in progress or DATABASE_URL names a standby
        check.error = "the primary is in recovery (read-only)"
        return check
    check.status, check.detail["wal_lsn"] = UP, lsn
    return check


def probe_replica(alias: str) -> Check:
    check = Check(alias, critical=False)
    in_recovery, _received, replayed, lag_seconds = _query(
        alias,
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
        "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END",
    )
    check.detail.update(replay_lsn=replayed, lag_seconds=round(float(lag_seconds or 0), 3))
    if not in_recovery:
        check.status, check.error = DEGRADED, "not in recovery: this server is not a replica"
    else:
        check.status = UP
    return check


def probe_redis() -> Check:
    check = Check("redis", critical=False)
    if not settings.REDIS_URL:
        check.status = SKIPPED
        return check
    client = cache.client.get_client(write=True)  # django-redis: the raw redis-py client
    client.ping()
    check.status = UP
    return check


def _timed(probe, *args) -> Check:
    started = time.perf_counter()
    name = args[0] if args else probe.__name__.removeprefix("probe_")
    try:
        check = probe(*args)
    except Exception as exc:  # a probe reports, it never raises
        check = Check(DEFAULT_DB_ALIAS if probe is probe_primary else name, critical=probe is probe_primary)
        check.error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        logger.warning("readiness: %s is down (%s)", check.name, check.error)
    check.ms = round((time.perf_counter() - started) * 1000, 1)
    return check


def run_checks(timeout: float = PROBE_TIMEOUT_SECONDS) -> list[Check]:
    """Probe the primary, every replica and Redis at once; a probe past the deadline counts as down."""
    replicas = [alias for alias in connections.settings if alias != DEFAULT_DB_ALIAS]
    jobs = [(probe_primary,), *((probe_replica, alias) for alias in replicas), (probe_redis,)]
    names = [DEFAULT_DB_ALIAS, *replicas, "redis"]
    pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="ready")
    futures = [pool.submit(_timed, *job) for job in jobs]
    wait(futures, timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    checks = []
    for name, future in zip(names, futures, strict=True):
        if future.done():
            checks.append(future.result())
        else:
            checks.append(Check(name, critical=name == DEFAULT_DB_ALIAS, error="timed out", ms=timeout * 1000))
    _add_replica_lag_bytes(checks)
    return checks


def _add_replica_lag_bytes(checks: list[Check]) -> None:
    primary_lsn = _lsn_to_int(checks[0].detail.get("wal_lsn"))
    for check in checks[1:]:
        replayed = _lsn_to_int(check.detail.get("replay_lsn"))
        if primary_lsn is not None and replayed is not None:
            check.detail["lag_bytes"] = max(primary_lsn - replayed, 0)


def summary(checks: list[Check]) -> dict:
    """Return the /ready document: overall status, every check, and this process's routing view."""
    critical_down = any(c.critical and c.status != UP for c in checks)
    degraded = any(c.status in {DOWN, DEGRADED} for c in checks)
    status = "unavailable" if critical_down else "degraded" if degraded else "ok"
    return {
        "status": status,
        "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks},
        "routing": {"replicas": monitor.describe(), "counters": counters.snapshot(), "pid": os.getpid()},
    }
