"""Freeze the primary (SIGSTOP of the postmaster and every backend) under load, then SIGCONT.

The kernel keeps accepting connections and ACKing bytes, so nothing is refused and no keepalive fires:
only a client-side deadline helps (a storage stall or a frozen instance on RDS).
"""

from __future__ import annotations

from bench.env import BenchEnv
from drills.harness import HANG_FAULT, Drill, signups_answer_503_within
from drills.pgfaults import postgres_freeze


def drill(env: BenchEnv) -> Drill:
    fault = postgres_freeze(env, env.pg.primary, "primary")
    return Drill("freeze_primary", fault, fault_seconds=HANG_FAULT, checks=[signups_answer_503_within(10)])
