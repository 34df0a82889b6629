"""Health of this process (/health) and of what it depends on (/ready).

The policy, in order (AWS Builders' Library, "Implementing health checks"):
1. The load balancer checks /health: this process answers and is not draining. It touches nothing outside
   the task: a dependency in the load balancer's check would make it a hard dependency, and a database
   failover would take every task out of service (and ECS would replace them all).
2. Draining: gunicorn's SIGTERM sets a flag (gunicorn.conf.py); /health then answers 503 while the worker
   finishes what it holds.
3. /ready is the deep check for on-call and alarms: the primary, every replica and Redis, probed
   concurrently, each within PROBE_TIMEOUT_SECONDS.
4. A probe never opens a connection per call: each dependency has one long-lived probe thread in each
   process whose Django connection persists (CONN_MAX_AGE, health-checked before reuse, closed after an
   error); Redis goes through django-redis's connection pool.
5. A probe still stuck from an earlier call is not started again (at most one thread per dependency waits
   on a hung server); the caller gets "timed out".
6. A result is reused for READY_CACHE_SECONDS in each process; concurrent callers share one run.
7. The anonymous answer is the status alone; the detail (positions, errors, pid, router state) needs a staff
   session or `Authorization: Bearer $READY_TOKEN` (ops/views.py).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections

from project.cache import breaker
from project.db import bounds, counters
from project.db.monitor import lsn_to_int, monitor

logger = logging.getLogger("ops.health")

UP, DOWN, DEGRADED, SKIPPED = "up", "down", "degraded", "not configured"
PROBE_TIMEOUT_SECONDS = 2.5
READY_CACHE_SECONDS = 1.0

_draining = threading.Event()


def start_draining() -> None:
    """Say from now on that this process is going away (gunicorn's SIGTERM)."""
    _draining.set()


def is_draining() -> bool:
    return _draining.is_set()


@dataclass
class Check:
    name: str
    critical: bool
    status: str = DOWN
    ms: float = 0.0
    error: str = ""
    detail: dict = field(default_factory=dict)


def _query(alias: str, sql: str) -> tuple:
    """Run one query on this probe thread's kept connection; a failed connection is not kept."""
    conn = connections[alias]
    conn.close_if_unusable_or_obsolete()  # past CONN_MAX_AGE, or an error was seen on it
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    except Exception:
        conn.close()
        raise


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
    check.detail["breaker"] = breaker.state  # what the app's own cache calls are doing right now
    client = cache.client.get_client(write=True)  # django-redis: the raw redis-py client, past the breaker
    client.ping()
    check.status = UP
    return check


def _timed(probe, name: str, *args) -> Check:
    started = time.perf_counter()
    try:
        check = probe(*args)
    except Exception as exc:  # a probe reports, it never raises
        check = Check(name, critical=name == DEFAULT_DB_ALIAS)
        check.error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        logger.warning("readiness: %s is down (%s)", check.name, check.error)
    check.ms = round((time.perf_counter() - started) * 1000, 1)
    return check


class _ProbeThread:
    """One daemon thread per dependency: its Django connection outlives each call (daemon: a probe stuck
    on a frozen server never holds up the process's exit)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.current: Future | None = None
        threading.Thread(target=self._run, name=f"ready-{name}", daemon=True).start()

    def submit(self, fn, *args) -> Future:
        """Start `fn` unless the previous call is still running: then hand back that one."""
        if self.current is None or self.current.done():
            self.current = Future()
            self._jobs.put((self.current, fn, args))
        return self.current

    def _run(self) -> None:
        while True:
            future, fn, args = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)


class _Prober:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # one run at a time in this process; the others reuse its result
        self._pid: int | None = None
        self._threads: dict[str, _ProbeThread] = {}
        self._result: tuple[float, list[Check]] | None = None

    def _thread(self, name: str) -> _ProbeThread:
        if self._pid != os.getpid():  # forked (gunicorn preloads): the parent's threads are not here
            self._pid, self._threads, self._result = os.getpid(), {}, None
        if name not in self._threads:
            self._threads[name] = _ProbeThread(name)
        return self._threads[name]

    def run(self, timeout: float) -> list[Check]:
        replicas = [alias for alias in connections.settings if alias != DEFAULT_DB_ALIAS]
        jobs = [(DEFAULT_DB_ALIAS, probe_primary), *((a, probe_replica, a) for a in replicas), ("redis", probe_redis)]
        futures = [self._thread(name).submit(_timed, probe, name, *args) for name, probe, *args in jobs]
        wait(futures, timeout=timeout)
        checks = []
        for (name, *_), future in zip(jobs, futures, strict=True):
            if future.done():
                checks.append(future.result())
            else:
                checks.append(Check(name, critical=name == DEFAULT_DB_ALIAS, error="timed out", ms=timeout * 1000))
        _add_replica_lag_bytes(checks)
        return checks

    def cached(self, timeout: float, max_age: float) -> list[Check]:
        with self._lock:
            if self._pid == os.getpid() and self._result and time.monotonic() - self._result[0] < max_age:
                return self._result[1]
            checks = self.run(timeout)
            self._result = (time.monotonic(), checks)
            return checks


_prober = _Prober()


def run_checks(timeout: float = PROBE_TIMEOUT_SECONDS, max_age: float = READY_CACHE_SECONDS) -> list[Check]:
    """Probe the primary, every replica and Redis at once (or reuse a result younger than `max_age`)."""
    return _prober.cached(timeout, max_age)


def _add_replica_lag_bytes(checks: list[Check]) -> None:
    primary_lsn = lsn_to_int(checks[0].detail.get("wal_lsn"))
    for check in checks[1:]:
        replayed = lsn_to_int(check.detail.get("replay_lsn"))
        if primary_lsn is not None and replayed is not None:
            check.detail["lag_bytes"] = max(primary_lsn - replayed, 0)


def status(checks: list[Check]) -> str:
    """Return "unavailable" when a critical check failed, "degraded" when another did, else "ok"."""
    if any(c.critical and c.status != UP for c in checks):
        return "unavailable"
    return "degraded" if any(c.status in {DOWN, DEGRADED} for c in checks) else "ok"


def summary(checks: list[Check]) -> dict:
    """Return the detailed /ready document: overall status, every check, and this process's routing view."""
    return {
        "status": status(checks),
        "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks},
        "routing": {
            "replicas": monitor.describe(),
            "counters": counters.snapshot(),
            "pid": os.getpid(),
            "databases": bounds.describe(),
        },  # each database's breaker (project/db/bounds.py)
    }
