"""Routing counters for this process: cheap to keep (a dict under a lock), read by /ready and ops."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter = Counter()

KINDS = ("reads", "fallbacks", "pins", "caught_up", "marked_down", "retries")


def incr(kind: str, label: str = "") -> None:
    with _lock:
        _counts[(kind, label)] += 1


def snapshot() -> dict:
    """Return {"reads": {alias: n}, "fallbacks": {reason: n}, "pins": n, "caught_up": n, "marked_down": {alias: n},
    "retries": n}."""
    with _lock:
        items = list(_counts.items())
    out: dict = {"reads": {}, "fallbacks": {}, "pins": 0, "caught_up": 0, "marked_down": {}, "retries": 0}
    for (kind, label), n in items:
        if isinstance(out[kind], dict):
            out[kind][label] = n
        else:
            out[kind] += n
    return out


def reset() -> None:
    with _lock:
        _counts.clear()
