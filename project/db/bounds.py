"""Bounded waits on PostgreSQL: a client-side deadline, a circuit breaker and a bulkhead per database.

A server that stops answering while its kernel still acknowledges TCP (a storage stall, a frozen process)
never trips keepalives, tcp_user_timeout or statement_timeout: only the client can give up. Per process:
- Deadline: every wait on a connection (a query, a fetch, a commit, Django's health check `SELECT 1`) ends
  after the wait limit, DATABASE_CLIENT_TIMEOUT (longer than statement_timeout, so a slow but living
  server cancels first and keeps the connection); `bounded(seconds)` changes it for a block, `None` lifts
  it (migrations). On expiry the connection is closed and DatabaseDeadline (an OperationalError) raised.
- Breaker: a deadline or a connect timeout opens that database's breaker. For a back-off (doubling from
  BACKOFF_FIRST up to BACKOFF_MAX seconds) every wait and connect on it fails at once with CircuitOpen;
  then one caller probes (half-open) while the others still fail fast; any answer closes it.
- Bulkhead: at most settings.DATABASE_BULKHEAD threads of a process wait on one database at once
  (gunicorn threads - 1). Another caller fails at once when the oldest of those waits is older than
  SLOW_WAIT (the database looks hung), else waits BULKHEAD_WAIT for a slot, then fails. A hung database
  never holds every thread, and the free one answers in milliseconds, so /health keeps answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from django.conf import settings

logger = logging.getLogger("project.db")

BACKOFF_FIRST = 1.0  # seconds the breaker stays open after the first hang
BACKOFF_MAX = 8.0  # longest back-off: a database that wakes is used again within this
BULKHEAD_WAIT = 0.5  # seconds a caller waits for a free slot before failing
SLOW_WAIT = 1.0  # a full bulkhead whose oldest wait is older than this fails callers at once

_UNSET = object()
_limit: ContextVar = ContextVar("db_wait_limit", default=_UNSET)


class DatabaseDeadline(psycopg.OperationalError):
    """The database did not answer within the client-side deadline; the connection was closed."""


class CircuitOpen(psycopg.OperationalError):
    """The database hung recently: not waiting on it again until its back-off has passed."""


def wait_limit() -> float | None:
    """Return the longest a wait on the database may take in this context (None: no limit)."""
    value = _limit.get()
    return settings.DATABASE_CLIENT_TIMEOUT if value is _UNSET else value


@contextmanager
def bounded(seconds: float | None) -> Iterator[None]:
    """Use another wait limit inside this block (None: wait as long as the server takes)."""
    token = _limit.set(seconds)
    try:
        yield
    finally:
        _limit.reset(token)


def lift_limit() -> None:
    """Wait without a limit from now on in this context (a one-shot command such as migrate)."""
    _limit.set(None)


class Bounds:
    """The breaker and bulkhead of one database alias in this process."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.DATABASE_BULKHEAD)
        self._waits: dict[object, float] = {}  # monotonic start of every wait holding a slot
        self.failures = 0
        self.open_until = 0.0
        self._probing = False
        self.tripped = 0  # times the breaker opened (for /ready and tests)

    def state(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if not self.failures:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def admit(self) -> bool:
        """Raise CircuitOpen unless this caller may reach the database; True when it is the half-open probe."""
        with self._lock:
            state = self.state()
            if state == "closed":
                return False
            if state == "half-open" and not self._probing:
                self._probing = True
                return True
        wait = max(self.open_until - time.monotonic(), 0.0)
        raise CircuitOpen(f"database {self.alias} hung recently; next try in {wait:.1f} s")

    def succeeded(self, probe: bool) -> None:
        if not self.failures and not probe:
            return
        with self._lock:
            if self.failures:
                logger.warning("database %s answers again; breaker closed", self.alias)
            self.failures, self.open_until, self._probing = 0, 0.0, False

    def hung(self, probe: bool, what: str) -> None:
        with self._lock:
            self.failures += 1
            self.tripped += 1
            backoff = min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)
            self.open_until = time.monotonic() + backoff
            if probe:
                self._probing = False
        logger.error("database %s: %s; failing fast for %.1f s", self.alias, what, backoff)

    def released(self, probe: bool) -> None:
        """A probe that ended with an ordinary error (neither an answer nor a hang) lets another probe go."""
        if probe:
            with self._lock:
                self._probing = False

    @contextmanager
    def slot(self, limit: float | None) -> Iterator[None]:
        """Hold one of the bulkhead's slots while waiting on the database."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                oldest = min(self._waits.values(), default=time.monotonic())
            full = f"database {self.alias}: {settings.DATABASE_BULKHEAD} threads already wait on it"
            if time.monotonic() - oldest > SLOW_WAIT:
                raise CircuitOpen(f"{full}, one for {time.monotonic() - oldest:.1f} s")
            if not self._slots.acquire(timeout=BULKHEAD_WAIT if limit is None else min(BULKHEAD_WAIT, limit)):
                raise CircuitOpen(full)
        token = object()
        with self._lock:
            self._waits[token] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._waits[token]
            self._slots.release()


_all: dict[str, Bounds] = {}
_all_lock = threading.Lock()


def of(alias: str) -> Bounds:
    """Return the Bounds of one alias (created on first use)."""
    bounds = _all.get(alias)
    if bounds is None:
        with _all_lock:
            bounds = _all.setdefault(alias, Bounds(alias))
    return bounds


def describe() -> dict:
    """Return each alias's breaker state for /ready and the ops dashboard."""
    return {alias: {"breaker": b.state(), "tripped": b.tripped} for alias, b in sorted(_all.items())}


def reset() -> None:
    """Close every breaker, in place: kept connections (the /ready probes') hold their Bounds (tests)."""
    with _all_lock:
        for bounds in _all.values():
            with bounds._lock:
                bounds.failures, bounds.open_until, bounds._probing, bounds.tripped = 0, 0.0, False, 0


class BoundedConnection(psycopg.Connection):
    """psycopg's Connection whose every wait on the server goes through its database's Bounds."""

    bounds: Bounds | None = None  # set by the Django backend right after connecting
    answered_at = 0.0  # monotonic time of the server's last answer (the backend skips a health check soon after)

    def wait(self, gen, interval=0.1, timeout=None):
        bounds = self.bounds
        if bounds is None:
            return super().wait(gen, interval=interval, timeout=timeout)
        limit = wait_limit()
        ours = limit is not None and (timeout is None or limit < timeout)
        probe = bounds.admit()
        try:
            with bounds.slot(limit):
                result = super().wait(gen, interval=interval, timeout=limit if ours else timeout)
        except psycopg.errors._WaitTimeout:
            if not ours:
                raise  # the caller's own shorter timeout (notifies()), not a hang
            self.pgconn.finish()  # the server may still run it: this connection's state is unknown
            bounds.hung(probe, f"no answer within {limit:g} s")
            raise DatabaseDeadline(f"database {bounds.alias} did not answer within {limit:g} s") from None
        except BaseException:
            bounds.released(probe)
            raise
        bounds.succeeded(probe)
        self.answered_at = time.monotonic()
        return result


# --- migrations: index builds may take minutes; lock waits stay bounded (lock_timeout is kept) ----------
def before_migrate(using: str, **kwargs) -> None:
    """Let `migrate` wait as long as its statements take (pre_migrate receiver)."""
    from django.db import connections

    lift_limit()
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def after_migrate(using: str, **kwargs) -> None:
    """Put the session's usual limits back (post_migrate receiver)."""
    from django.db import connections

    _limit.set(_UNSET)
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
