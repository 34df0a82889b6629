"""Where each replica is, sampled in the background, so routing decisions cost no query.

Once per REPLICA_CHECK_INTERVAL a daemon thread in each process reads the primary's
`pg_current_wal_lsn()` and every replica's `pg_last_wal_replay_lsn()`. Lag is measured against the
primary's own WAL progress: bytes = primary position - replay position; seconds = how long ago the
primary had first written WAL the replica has not replayed yet (from the sampled history). This needs no
replica clock and does not mistake an idle primary for a lagging replica.

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
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from project.db import counters

logger = logging.getLogger("project.db")

HISTORY_SECONDS = 900  # how far back lag in seconds can be told apart
CATCH_UP_INTERVAL = 0.05  # seconds between on-demand position checks of one replica (per process)
REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
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
        self._pid: int | None = None

    # --- reading (request threads) ---------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start the sampling thread in this process (gunicorn forks after import, so check the pid)."""
        if self._pid != os.getpid() and settings.REPLICA_MONITOR_THREAD:
            with self._lock:
                if self._pid != os.getpid():
                    if self._pid is not None:  # forked: the parent's samples say nothing about now
                        self._statuses, self._breakers, self._history, self._asked = {}, {}, deque(), {}
                    self._pid = os.getpid()
                    threading.Thread(target=self._run, name="replica-monitor", daemon=True).start()

    def eligible(self, alias: str, min_lsn: int, now: float | None = None) -> str:
        """Return "" when `alias` may serve a client that must see `min_lsn`, else the reason it may not."""
        now = time.monotonic() if now is None else now
        breaker = self._breakers.get(alias)
        if breaker and breaker.failures:
            return "down"
        status = self._statuses.get(alias)
        stale_after = max(3 * settings.REPLICA_CHECK_INTERVAL, 2.0)
        if status is None or status.replay_lsn is None or now - status.checked_at > stale_after:
            return "unknown"
        if status.lag_seconds is not None and status.lag_seconds > settings.REPLICA_MAX_LAG:
            return "lagging"
        max_bytes = settings.REPLICA_MAX_LAG_BYTES
        if max_bytes and status.lag_bytes is not None and status.lag_bytes > max_bytes:
            return "lagging"
        if min_lsn and status.replay_lsn < min_lsn:
            return "behind_client"
        return ""

    def caught_up(self, alias: str, min_lsn: int) -> bool:
        """Ask a replica that looked behind this client whether it has replayed `min_lsn` by now.

        The sample may be up to REPLICA_CHECK_INTERVAL old, and a replica usually replays a commit within
        milliseconds: one quick query (at most every CATCH_UP_INTERVAL per replica and process, on the
        connection the read will use) keeps a client who just wrote off the primary. The answer can only
        raise the replica's known position; an error marks the replica down.
        """
        now = time.monotonic()
        if now - self._asked.get(alias, 0.0) < CATCH_UP_INTERVAL:
            return False
        self._asked[alias] = now
        try:
            (lsn,) = _query(alias, "SELECT pg_last_wal_replay_lsn()::text")
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
        """Take one sample of the primary and of every replica whose breaker allows a probe."""
        with self._sampling:
            primary_lsn = self._sample_primary()
            for alias in replica_aliases():
                breaker = self._breakers.setdefault(alias, Breaker())
                if breaker.state(time.monotonic()) == "open":
                    continue
                try:
                    in_recovery, replay, replay_age = _query(alias, REPLICA_SQL)
                except Exception as exc:
                    self.mark_down(alias, exc)
                    continue
                now = time.monotonic()
                if not in_recovery:  # promoted or misconfigured: it no longer follows the primary
                    status = ReplicaStatus(checked_at=now, error="not in recovery")
                else:
                    status = self._status(lsn_to_int(replay), primary_lsn, now, replay_age)
                with self._lock:
                    if in_recovery and breaker.failures:
                        logger.info("replica %s is back", alias)
                        breaker.close()
                    self._statuses[alias] = status

    def _sample_primary(self) -> int | None:
        try:
            (lsn,) = _query(DEFAULT_DB_ALIAS, "SELECT pg_current_wal_lsn()::text")
        except Exception as exc:
            logger.debug("replica monitor: primary not sampled: %s", _describe(exc))
            return self._history[-1][1] if self._history else None
        now, value = time.monotonic(), lsn_to_int(lsn)
        if not self._history or value > self._history[-1][1]:
            self._history.append((now, value))
        while len(self._history) > 1 and now - self._history[0][0] > HISTORY_SECONDS:
            self._history.popleft()
        return value

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


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error).strip().splitlines()
    return f"{error.__class__.__name__}: {text[0][:160]}" if text else error.__class__.__name__


monitor = ReplicaMonitor()
