"""Figures of a drill: requests per phase and class, failures by status, latency percentiles; the checks."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from drills.load import Record

PHASES = ("baseline", "fault", "recovery")
KINDS = ("home", "form", "thanks", "signup", "health")


@dataclass
class Check:
    what: str
    passed: bool
    figure: str


def ok(status: str) -> bool:
    """A 2xx or 3xx answer; anything else (another status, a timeout, a refused connection) failed."""
    return status[:1] in {"2", "3"}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def phase_of(started: float, fault_start: float, fault_end: float) -> str:
    if started < fault_start:
        return "baseline"
    return "fault" if started < fault_end else "recovery"


def figures(records: list[Record]) -> dict:
    """Sent, failed (by status), p50/p99/max in milliseconds of these records."""
    seconds = [r.seconds for r in records]
    failed = Counter(r.status for r in records if not ok(r.status))
    return {
        "sent": len(records),
        "failed": sum(failed.values()),
        "failed_by_status": dict(sorted(failed.items())),
        "statuses": dict(sorted(Counter(r.status for r in records).items())),
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
        "max_ms": round(max(seconds, default=0.0) * 1000, 1),
    }


def summarise(records: list[Record], fault_start: float, fault_end: float) -> dict:
    """{phase: {kind or "all": figures}} plus "all" over the whole drill."""
    summary: dict = {}
    for phase in PHASES:
        mine = [r for r in records if phase_of(r.started, fault_start, fault_end) == phase]
        summary[phase] = {kind: figures([r for r in mine if r.kind == kind]) for kind in KINDS}
        summary[phase]["all"] = figures(mine)
    summary["all"] = figures(records)
    return summary


def table(summary: dict) -> str:
    """The per-phase, per-class figures as a text table."""
    lines = [f"  {'phase':9s} {'class':7s} {'sent':>5s} {'failed':>6s}  {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}  "
             "failures by status"]  # fmt: skip
    for phase in PHASES:
        for kind in (*KINDS, "all"):
            f = summary[phase][kind]
            if not f["sent"]:
                continue
            by_status = " ".join(f"{s}:{n}" for s, n in f["failed_by_status"].items())
            lines.append(f"  {phase:9s} {kind:7s} {f['sent']:5d} {f['failed']:6d}  {f['p50_ms']:8.0f} "
                         f"{f['p99_ms']:8.0f} {f['max_ms']:8.0f}  {by_status}")  # fmt: skip
    return "\n".join(lines)
