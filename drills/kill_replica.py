"""Kill the replica (a crash: pg_ctl stop -m immediate) under load, then start it again."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.harness import Drill, get_pages_all_200_within
from drills.pgfaults import postgres_crash


def drill(env: BenchEnv) -> Drill:
    fault = postgres_crash(env, env.pg.replica, "replica")
    return Drill("kill_replica", fault, reads_replica=True, checks=[get_pages_all_200_within(10)])
