"""Per-request routing state, kept in contextvars (thread- and async-safe, unlike thread-locals)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass
class RequestState:
    # WAL position this client must see, and its timeline (from its signed cookie; 0: any): replicas
    # behind it, or on another timeline, may not serve it.
    min_lsn: int = 0
    min_timeline: int = 0
    # Set once this request has written: its later reads must see that write, so they use the primary.
    wrote: bool = False
    # The database chosen for this request's reads, decided once so one page never mixes two snapshots.
    read_alias: str | None = None
    # A GET that failed on a replica is run again, once, on the primary (RoutingMiddleware).
    retry: bool = False
    # Cleared when this request's writes are read back only on the primary: no WAL position to remember.
    remember_position: bool = True


_request: ContextVar[RequestState | None] = ContextVar("db_request_state", default=None)
_forced: ContextVar[int] = ContextVar("db_force_primary", default=0)


def current() -> RequestState:
    """Return this context's state; outside a request (commands, shells) one lives for the context."""
    state = _request.get()
    if state is None:
        state = RequestState()
        _request.set(state)
    return state


def begin_request(min_lsn: int = 0, min_timeline: int = 0) -> Token:
    """Start a fresh routing scope for one request."""
    return _request.set(RequestState(min_lsn=min_lsn, min_timeline=min_timeline))


def end_request(token: Token) -> None:
    _request.reset(token)


def mark_written() -> None:
    current().wrote = True


def read_back_on_primary() -> None:
    """Say that whatever reads this request's writes later reads the primary: set no position cookie.

    Saves the query for the primary's WAL position (a round trip) on a write whose only reader is known.
    """
    current().remember_position = False


def has_written() -> bool:
    return current().wrote


def primary_forced() -> bool:
    return _forced.get() > 0


@contextmanager
def use_primary() -> Iterator[None]:
    """Send every read inside this block (or view, used as ``@use_primary()``) to the primary."""
    token = _forced.set(_forced.get() + 1)
    try:
        yield
    finally:
        _forced.reset(token)
