"""Redis behind a circuit breaker: after a failure every cache user skips Redis for a short back-off.

The rules, in order:
1. Closed: calls go to Redis. A connection error or timeout opens the breaker (logged once, with the
   traceback) and the call fails as a miss (django-redis's IGNORE_EXCEPTIONS turns it into the default).
2. Open: no call reaches Redis; each fails at once as a miss, silently. A frozen Redis (the kernel still
   accepts, nothing answers) would otherwise cost every call its full socket timeout.
3. When the back-off has passed, one call is let through (half-open) while the others keep skipping:
   success closes the breaker (logged once); failure opens it again for twice as long, up to
   REDIS_RETRY_SECONDS (logged as a warning, without a traceback).
4. A ResponseError (e.g. INCR on a non-number) is Redis answering: it counts as success.

Everything that uses the cache goes through it unchanged: the rate limit, the landing-page count and its
invalidation, the sessions' cache layer (cached_db falls back to the database), the ops dashboard.
The state is per process (a lock and two numbers); /ready shows it under redis.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from project import metrics

logger = logging.getLogger("project.cache")

FIRST_BACKOFF_SECONDS = 1.0
_OUTAGE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


class CircuitOpen(RedisConnectionError):
    """Redis is being skipped after a recent failure (the breaker is open)."""


class Breaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.down_since = 0.0

    @property
    def state(self) -> str:
        if not self.failures:
            return "closed"
        return "open" if time.monotonic() < self.open_until else "half-open"

    def allow(self) -> bool:
        """Say whether this call may reach Redis; past the back-off exactly one caller gets through."""
        if not self.failures:
            return True
        with self._lock:
            now = time.monotonic()
            if not self.failures or now >= self.open_until:
                if self.failures:  # the half-open probe: hold the others off for as long as it may take
                    self.open_until = now + self._backoff()
                return True
            return False

    def succeeded(self) -> None:
        if not self.failures:
            return
        with self._lock:
            if self.failures:
                logger.warning(
                    "Redis reachable again after %.1f s: using the cache", time.monotonic() - self.down_since
                )
                self.reset()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            first = not self.failures
            if first:
                self.down_since = now
            self.failures += 1
            backoff = self._backoff()
            self.open_until = now + backoff
        if first:
            logger.error("Redis unreachable: skipping the cache for %.1f s", backoff, exc_info=exc)
        else:
            logger.warning("Redis still unreachable (%s): next try in %.1f s", exc.__class__.__name__, backoff)

    def _backoff(self) -> float:
        return min(FIRST_BACKOFF_SECONDS * 2 ** max(self.failures - 1, 0), settings.REDIS_RETRY_SECONDS)


breaker = Breaker()


def _outage_cause(exc: BaseException) -> BaseException | None:
    """Return the connection error behind `exc`, or None when Redis answered (e.g. a ResponseError)."""
    cause = exc.__cause__ if isinstance(exc, ConnectionInterrupted) else exc
    return cause if isinstance(cause, _OUTAGE) else None


_inside = threading.local()  # a guarded call made by another (add -> set) is the same call: not checked twice


def _guarded(name: str):
    def method(self, *args, **kwargs):
        call = getattr(super(CircuitBreakerClient, self), name)
        if getattr(_inside, "active", False):
            return call(*args, **kwargs)
        if not breaker.allow():
            metrics.incr("RedisCircuitOpen")  # a cache call skipped: the fleet-wide circuit state
            raise ConnectionInterrupted(connection=None) from CircuitOpen("circuit open")
        _inside.active = True
        try:
            result = call(*args, **kwargs)
        except Exception as exc:
            cause = _outage_cause(exc)
            if cause is None:  # Redis answered with an error: a bug to see, not an outage
                breaker.succeeded()
                logger.warning("Redis refused %s: %s", name, exc.__cause__ or exc)
                raise
            breaker.failed(cause)
            if isinstance(exc, ConnectionInterrupted):
                raise
            raise ConnectionInterrupted(connection=None) from exc
        finally:
            _inside.active = False
        breaker.succeeded()
        return result

    method.__name__ = name
    return method


class CircuitBreakerClient(DefaultClient):
    """django-redis's client with every cache operation behind the process's circuit breaker."""

    for _name in ("get", "set", "add", "delete", "delete_many", "delete_pattern", "get_many", "set_many", "incr",
                  "decr", "has_key", "ttl", "touch", "expire", "persist", "clear", "keys", "incr_version"):  # fmt: skip
        locals()[_name] = _guarded(_name)
    del _name
