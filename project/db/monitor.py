"""Where each replica is, sampled in the background, so routing decisions cost no query.

Once per REPLICA_CHECK_INTERVAL a daemon thread in each process reads the primary's
`pg_current_wal_lsn()` and every replica's `pg_last_wal_replay_lsn()`, each with its timeline. Lag is
measured against the primary's own WAL progress: bytes = primary position - replay position; seconds = how
long ago the primary had first written WAL the replica has not replayed yet (from the sampled history).
This needs no replica clock and does not mistake an idle primary for a lagging replica.

Positions compare only on one timeline. After a promotion a sibling still on the old timeline may be at a
higher LSN than the new primary without having any of its writes: a replica whose timeline is not the
primary's serves nobody until it follows the primary's. The primary's timeline is that of its current
WAL file (`pg_walfile_name`; pg_control_checkpoint() keeps the old one until the first checkpoint after
a promotion); a replica's is the timeline its WAL receiver streams (`pg_stat_wal_receiver.received_tli`;
a standby can only follow a timeline whose history holds its replay position, so the pair compares),
else, with no receiver running, that of its last restartpoint (older or equal: only ever too careful).

Each database is probed in its own thread (its connection stays there) and a round waits at most
PROBE_TIMEOUT: a hung replica is marked down and never delays the sampling of the others.

A replica that errors is marked down by a circuit breaker: no reads until its back-off (doubling from the
check interval up to REPLICA_RETRY_SECONDS) has passed; then the next sample is the half-open probe,
and success closes it. Every stale or missing piece of information only ever sends reads to the primary.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from project.db import bounds, counters

logger = logging.getLogger("project.db")

HISTORY_SECONDS = 900  # how far back lag in seconds can be told apart
CATCH_UP_INTERVAL = 0.05  # seconds between on-demand position checks of one replica (per process)
PROBE_TIMEOUT = 2.0  # seconds a replica probe may take before that replica counts as down for the round
# The primary's position and timeline (the hex digits 1-8 of a WAL file name are its timeline).
PRIMARY_SQL = (
    "SELECT pg_current_wal_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
)
# The same two, as columns a write statement returns with its rows, saving the query above after it
# (users.models: the signup's one statement). Taken inside the statement, so just before its commit record: a
# replica that reached it may lack that commit for the moment between; the reader of such a write reads a
# miss again on the primary (users.views.thanks).
WRITE_POSITION_SQL = (
    "pg_current_wal_insert_lsn()::text,"
    " ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int"
)
REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), "
    "coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))"
)


def lsn_to_int(lsn: str | None) -> int | None:
    if not lsn:
        return None
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def replica_aliases() -> list[str]:
    return [alias for alias in connections.settings if alias != DEFAULT_DB_ALIAS]


@dataclass(frozen=True)
class ReplicaStatus:
    replay_lsn: int | None = None
    timeline: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    checked_at: float = 0.0  # time.monotonic() of the sample
    error: str = ""


@dataclass
class Breaker:
    failures: int = 0
    open_until: float = 0.0

    def state(self, now: float) -> str:
        if not self.failures:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def trip(self, now: float) -> None:
        self.failures += 1
        base = settings.REPLICA_CHECK_INTERVAL
        self.open_until = now + min(base * 2 ** (self.failures - 1), settings.REPLICA_RETRY_SECONDS)

    def close(self) -> None:
        self.failures, self.open_until = 0, 0.0


class ReplicaMonitor:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the dicts; held only for assignments, never across a query
        self._sampling = threading.Lock()  # one sampler at a time
        self._statuses: dict[str, ReplicaStatus] = {}
        self._breakers: dict[str, Breaker] = {}
        self._history: deque[tuple[float, int]] = deque()  # (monotonic time, primary LSN), LSN increasing
        self._asked: dict[str, float] = {}  # when a request thread last asked each replica (caught_up)
        self._timeline: int | None = None  # the primary's, last sampled
        self._probes: dict[str, ThreadPoolExecutor] = {}  # one thread (and connection) per database
        self._pending: dict[str, Future] = {}  # a probe still running from an earlier round
        self._pid: int | None = None

    # --- reading (request threads) ---------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start the sampling thread in this process (gunicorn forks after import, so check the pid)."""
        if self._pid != os.getpid() and settings.REPLICA_MONITOR_THREAD:
            with self._lock:
                if self._pid != os.getpid():
                    if self._pid is not None:  # forked: the parent's samples and threads are not ours
                        self._statuses, self._breakers, self._history, self._asked = {}, {}, deque(), {}
                        self._probes, self._pending = {}, {}
                    self._pid = os.getpid()
                    threading.Thread(target=self._run, name="replica-monitor", daemon=True).start()

    def eligible(self, alias: str, min_lsn: int, now: float | None = None, min_timeline: int = 0) -> str:
        """Return "" when `alias` may serve a client that must see `min_lsn` on `min_timeline` (0: any), else why."""
        now = time.monotonic() if now is None else now
        breaker = self._breakers.get(alias)
        if breaker and breaker.failures:
            return "down"
        status = self._statuses.get(alias)
        stale_after = max(3 * settings.REPLICA_CHECK_INTERVAL, 2.0)
        if status is None or status.replay_lsn is None or now - status.checked_at > stale_after:
            return "unknown"
        if self._timeline is not None and status.timeline != self._timeline:
            return "timeline"  # its positions say nothing about the primary's writes
        if status.lag_seconds is not None and status.lag_seconds > settings.REPLICA_MAX_LAG:
            return "lagging"
        max_bytes = settings.REPLICA_MAX_LAG_BYTES
        if max_bytes and status.lag_bytes is not None and status.lag_bytes > max_bytes:
            return "lagging"
        if min_lsn and (status.replay_lsn < min_lsn or (min_timeline and status.timeline != min_timeline)):
            return "behind_client"
        return ""

    def caught_up(self, alias: str, min_lsn: int, min_timeline: int = 0) -> bool:
        """Ask a replica that looked behind this client whether it has replayed `min_lsn` by now.

        The sample may be up to REPLICA_CHECK_INTERVAL old, and a replica usually replays a commit within
        milliseconds: one quick query (at most every CATCH_UP_INTERVAL per replica and process, on the
        connection the read will use) keeps a client who just wrote off the primary. The answer can only
        raise the replica's known position; an error marks the replica down.
        """
        now = time.monotonic()
        status = self._statuses.get(alias)
        if min_timeline and (status is None or status.timeline != min_timeline):
            return False  # on another timeline than this client's write: no position can tell
        if now - self._asked.get(alias, 0.0) < CATCH_UP_INTERVAL:
            return False
        self._asked[alias] = now
        try:
            (lsn,) = _bounded_query(alias, "SELECT pg_last_wal_replay_lsn()::text", PROBE_TIMEOUT)
        except Exception as exc:
            self.mark_down(alias, exc)
            return False
        replay = lsn_to_int(lsn)
        if replay is None:
            return False
        with self._lock:
            status = self._statuses.get(alias)
            if status is not None and status.replay_lsn is not None and replay > status.replay_lsn:
                self._statuses[alias] = dataclasses.replace(status, replay_lsn=replay)
        return replay >= min_lsn

    def mark_down(self, alias: str, error: BaseException | str) -> None:
        """Open the breaker for a replica that just failed a request."""
        now = time.monotonic()
        with self._lock:
            breaker = self._breakers.setdefault(alias, Breaker())
            was_closed = not breaker.failures
            breaker.trip(now)
            self._statuses[alias] = ReplicaStatus(checked_at=now, error=_describe(error))
        if was_closed:
            counters.incr("marked_down", alias)
            logger.warning("replica %s marked down: %s", alias, _describe(error))

    def describe(self) -> dict:
        """Return each replica's routing view for /ready and the ops dashboard."""
        self.ensure_running()
        now = time.monotonic()
        out = {}
        for alias in replica_aliases():
            status = self._statuses.get(alias, ReplicaStatus())
            breaker = self._breakers.get(alias, Breaker())
            reason = self.eligible(alias, 0, now)
            out[alias] = {
                "serving": not reason, "reason": reason, "breaker": breaker.state(now),
                "lag_bytes": status.lag_bytes, "lag_seconds": status.lag_seconds, "error": status.error,
                "timeline": status.timeline,
                "sampled_seconds_ago": round(now - status.checked_at, 2) if status.checked_at else None,
            }  # fmt: skip
        return out

    # --- sampling (the monitor thread, or a test calling refresh()) -----------------------------------
    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # the monitor must never die; its silence only sends reads to the primary
                logger.exception("replica monitor round failed")
            time.sleep(max(settings.REPLICA_CHECK_INTERVAL - (time.monotonic() - started), 0.05))

    def refresh(self) -> None:
        """Take one sample of the primary and of every replica whose breaker allows a probe, concurrently."""
        with self._sampling:
            jobs = {DEFAULT_DB_ALIAS: self._submit(DEFAULT_DB_ALIAS, PRIMARY_SQL, None)}
            for alias in replica_aliases():
                breaker = self._breakers.setdefault(alias, Breaker())
                if breaker.state(time.monotonic()) != "open":
                    jobs[alias] = self._submit(alias, REPLICA_SQL, PROBE_TIMEOUT)
            wait_for([job for job in jobs.values() if job], timeout=PROBE_TIMEOUT)
            primary_lsn = self._primary_sample(jobs.pop(DEFAULT_DB_ALIAS))
            for alias, job in jobs.items():
                self._replica_sample(alias, job, primary_lsn)

    def _submit(self, alias: str, sql: str, limit: float | None) -> Future | None:
        """Start one probe in the alias's own thread; None while its previous probe still runs (hung)."""
        pending = self._pending.get(alias)
        if pending is not None and not pending.done():
            return None
        executor = self._probes.get(alias)
        if executor is None:
            executor = self._probes[alias] = ThreadPoolExecutor(1, thread_name_prefix=f"probe-{alias}")
        if limit is None:
            job = executor.submit(_query, alias, sql)
        else:
            job = executor.submit(_bounded_query, alias, sql, limit)
        self._pending[alias] = job
        return job

    def _primary_sample(self, job: Future | None) -> int | None:
        last = self._history[-1][1] if self._history else None
        if job is None or not job.done() or job.exception() is not None:
            if job is not None and job.done():
                logger.debug("replica monitor: primary not sampled: %s", _describe(job.exception()))
            return last  # a primary that does not answer keeps its last position: lag only grows
        lsn, timeline = job.result()
        now, value = time.monotonic(), lsn_to_int(lsn)
        self._timeline = timeline
        if not self._history or value > self._history[-1][1]:
            self._history.append((now, value))
        while len(self._history) > 1 and now - self._history[0][0] > HISTORY_SECONDS:
            self._history.popleft()
        return value

    def _replica_sample(self, alias: str, job: Future | None, primary_lsn: int | None) -> None:
        if job is None or not job.done():
            self.mark_down(alias, f"no answer within {PROBE_TIMEOUT:g} s")
            return
        if job.exception() is not None:
            self.mark_down(alias, job.exception())
            return
        in_recovery, replay, replay_age, timeline = job.result()
        now = time.monotonic()
        if not in_recovery:  # promoted or misconfigured: it no longer follows the primary
            status = ReplicaStatus(checked_at=now, error="not in recovery")
        else:
            status = dataclasses.replace(self._status(lsn_to_int(replay), primary_lsn, now, replay_age),
                                         timeline=timeline)  # fmt: skip
        breaker = self._breakers.setdefault(alias, Breaker())
        with self._lock:
            if in_recovery and breaker.failures:
                logger.info("replica %s is back", alias)
                breaker.close()
            self._statuses[alias] = status

    def _status(self, replay: int | None, primary_lsn: int | None, now: float, replay_age) -> ReplicaStatus:
        if replay is None or primary_lsn is None:
            return ReplicaStatus(replay_lsn=replay, checked_at=now)
        if replay >= primary_lsn:
            return ReplicaStatus(replay_lsn=replay, lag_bytes=0, lag_seconds=0.0, checked_at=now)
        # The first sample showing WAL beyond the replay position: WAL the replica lacks existed by then.
        first_ahead = next(i for i, (_, lsn) in enumerate(self._history) if lsn > replay)
        lag = now - self._history[first_ahead][0]
        if first_ahead == 0 and replay_age is not None:
            # Behind since before our history began: only the replica's own (pessimistic) figure can tell.
            lag = max(lag, float(replay_age))
        return ReplicaStatus(replay_lsn=replay, lag_bytes=primary_lsn - replay, lag_seconds=round(lag, 3),
                             checked_at=now)  # fmt: skip

    def reset(self) -> None:
        """Forget all samples and breakers (tests)."""
        with self._sampling, self._lock:
            self._statuses, self._breakers, self._history, self._asked = {}, {}, deque(), {}
            self._timeline = None

    def primary_timeline(self) -> int | None:
        return self._timeline


def _query(alias: str, sql: str) -> tuple:
    """Run one sampling query; a kept connection that broke (the server restarted) gets one fresh try."""
    connection = connections[alias]
    for attempt in (1, 2):
        reused = connection.connection is not None
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()
        except Exception:
            connection.close()
            if attempt == 2 or not reused:
                raise
    raise AssertionError("unreachable")


def _bounded_query(alias: str, sql: str, limit: float) -> tuple:
    with bounds.bounded(limit):
        return _query(alias, sql)


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error).strip().splitlines()
    return f"{error.__class__.__name__}: {text[0][:160]}" if text else error.__class__.__name__


monitor = ReplicaMonitor()
