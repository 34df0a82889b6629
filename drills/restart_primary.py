"""Crash the primary (pg_ctl stop -m immediate) under load, keep it down, then start it again."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.faults import kill_postgres, refuses
from drills.harness import Drill, Fault, FaultNotObserved


def drill(env: BenchEnv) -> Drill:
    primary = env.pg.primary

    def verify() -> str:
        if not refuses(primary.port):
            raise FaultNotObserved(f"the primary's port {primary.port} still accepts connections")
        return f"the primary's port {primary.port} refuses connections"

    def restore() -> None:
        primary.start()
        env.pg.wait_for_replica(timeout=30)

    fault = Fault("primary crashed (pg_ctl stop -m immediate), started again afterwards",
                  lambda: kill_postgres(primary), verify, restore)  # fmt: skip
    return Drill("restart_primary", fault)
