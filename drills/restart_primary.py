"""Crash the primary (pg_ctl stop -m immediate) under load, keep it down, then start it again."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.harness import Drill
from drills.pgfaults import postgres_crash


def drill(env: BenchEnv) -> Drill:
    return Drill("restart_primary", postgres_crash(env, env.pg.primary, "primary"))
