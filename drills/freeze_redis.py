"""Freeze Redis (SIGSTOP) under load: the kernel still accepts connections but nothing answers. Then SIGCONT."""

from __future__ import annotations

from bench.env import BenchEnv
from devenv.servers import process_state
from drills.faults import REDIS_PING, answers, freeze, redis_pid, thaw
from drills.harness import Drill, Fault, FaultNotObserved, signup_p50_within


def drill(env: BenchEnv) -> Drill:
    redis = env.redis
    frozen: list[int] = []

    def inject() -> None:
        frozen[:] = [redis_pid(redis)]
        freeze(frozen)

    def verify() -> str:
        state = process_state(frozen[0])
        if state != "T" or answers(redis.port, REDIS_PING):
            raise FaultNotObserved(f"redis-server {frozen[0]} in state {state!r} or still answering PING")
        return f"redis-server {frozen[0]} stopped (state T); PING unanswered after 1 s"

    fault = Fault("redis-server frozen (SIGSTOP), continued afterwards", inject, verify, lambda: thaw(frozen))
    return Drill("freeze_redis", fault, checks=[signup_p50_within(2.0)])
