"""App metrics as CloudWatch Embedded Metric Format (EMF) members of our own JSON log lines.

1. `incr("Signups")` adds to the metrics of the current unit of work (a request, a worker task): a
   contextvar opened by `collect()`; outside one it does nothing (cheap, and never an error).
2. The unit's log line carries them as EMF (namespace `METRICS_NAMESPACE`): CloudWatch Logs turns them into
   metrics, so the fleet's figures cost no API call. A metric seen with two values of one dimension (reads
   from two aliases in one request) needs a second document: `documents()` returns it for its own line.
3. Dimensions are names from a fixed list (`DIMENSIONS`), with values chosen by the code (a database alias),
   never by a visitor: no personal data ever becomes a dimension (and an unknown one raises).
4. Metrics without a dimension are declared with the empty dimension set, so they aggregate fleet-wide.
The format is AWS's documented one (tests/ops/emf_schema.json validates it); aws-embedded-metrics writes to
its own sink or stdout, not into the line our logger already writes, hence this small module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

# Every name the app emits (the dashboard charts these) and the dimensions a metric may carry.
NAMES = ("Signups", "SignupDuplicates", "EmailsSent", "EmailsFailed", "RouterReads", "RouterFallbacks",
         "RouterPins", "RouterRetries", "RedisCircuitOpen")  # fmt: skip
DIMENSIONS = frozenset({"Alias"})

_current: ContextVar[dict | None] = ContextVar("metrics", default=None)


def incr(name: str, value: float = 1, **dimensions: str) -> None:
    """Add `value` to metric `name` (with `dimensions`) for the current request or task."""
    if not DIMENSIONS.issuperset(dimensions):
        raise ValueError(f"metric dimension not allowed: {sorted(set(dimensions) - DIMENSIONS)}")
    bucket = _current.get()
    if bucket is not None:
        key = (name, tuple(sorted(dimensions.items())))
        bucket[key] = bucket.get(key, 0) + value


@contextmanager
def collect() -> Iterator[dict]:
    """Open a unit of work whose metrics `incr` accumulates; yield them ({(name, dims): value})."""
    bucket: dict = {}
    token = _current.set(bucket)
    try:
        yield bucket
    finally:
        _current.reset(token)


def documents(bucket: dict, timestamp: float | None = None) -> list[dict]:
    """Return the EMF members for `bucket`: the first goes on the unit's own line, any others on lines of their own."""
    docs: list[dict] = []
    for (name, dims), value in sorted(bucket.items()):
        doc = next((d for d in docs if _fits(d, name, dims)), None)
        if doc is None:
            doc = {"members": {}, "sets": {}}
            docs.append(doc)
        doc["members"].update(dims)
        doc["members"][name] = value
        doc["sets"].setdefault(tuple(k for k, _ in dims), []).append(name)
    stamp = int((time.time() if timestamp is None else timestamp) * 1000)
    namespace = settings.METRICS_NAMESPACE
    return [
        {
            "_aws": {
                "Timestamp": stamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(keys)],
                        "Metrics": [{"Name": n, "Unit": "Count"} for n in names],
                    }
                    for keys, names in doc["sets"].items()
                ],
            },
            **doc["members"],
        }
        for doc in docs
    ]


def _fits(doc: dict, name: str, dims: tuple) -> bool:
    members = doc["members"]
    return name not in members and all(members.get(k, v) == v for k, v in dims)
