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
    # (timeline, WAL position) returned by this request's last write statement itself, which saves
    # RoutingMiddleware its query for them; any later write clears it.
    position: tuple[int, int] | None = None


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
    state = current()
    state.wrote, state.position = True, None


def note_position(timeline: int, lsn: int) -> None:
    """Record the primary's position that the write statement just run returned (see monitor.WRITE_POSITION_SQL)."""
    current().position = (timeline, lsn)


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
