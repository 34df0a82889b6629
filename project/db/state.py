"""Per-request routing state, kept in contextvars (thread- and async-safe)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# Set once the current request has written: its later reads must see that write, so they use the primary.
_wrote: ContextVar[bool] = ContextVar("db_request_wrote", default=False)
# Depth of use_primary() blocks around the current code.
_forced: ContextVar[int] = ContextVar("db_force_primary", default=0)


def begin_request() -> Token:
    """Start a fresh routing scope for one request."""
    return _wrote.set(False)


def end_request(token: Token) -> None:
    _wrote.reset(token)


def mark_written() -> None:
    _wrote.set(True)


def has_written() -> bool:
    return _wrote.get()


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
