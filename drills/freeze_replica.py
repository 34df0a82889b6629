"""Freeze the replica (SIGSTOP of the postmaster, startup process, walreceiver, backends), then SIGCONT."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.harness import HANG_FAULT, Drill, get_pages_all_200_within
from drills.pgfaults import postgres_freeze


def drill(env: BenchEnv) -> Drill:
    fault = postgres_freeze(env, env.pg.replica, "replica")
    return Drill(
        "freeze_replica", fault, fault_seconds=HANG_FAULT, reads_replica=True, checks=[get_pages_all_200_within(10)]
    )
