"""Routing counters for this process: cheap to keep (a dict under a lock), read by /ready and ops."""

from __future__ import annotations

import threading
from collections import Counter

from project import metrics

_lock = threading.Lock()
_counts: Counter = Counter()

KINDS = ("reads", "fallbacks", "pins", "caught_up", "marked_down", "retries")


# The fleet-wide view of the same events: EMF on the request's log line (project/metrics.py).
_METRICS = {"reads": "RouterReads", "fallbacks": "RouterFallbacks", "pins": "RouterPins", "retries": "RouterRetries"}


def incr(kind: str, label: str = "") -> None:
    with _lock:
        _counts[(kind, label)] += 1
    if kind in _METRICS:
        metrics.incr(_METRICS[kind], **({"Alias": label} if kind == "reads" else {}))


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
