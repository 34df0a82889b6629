"""Kill Redis (SIGKILL) under load, then start it again on the same port (empty: no persistence)."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.faults import kill_redis, refuses
from drills.harness import Drill, Fault, FaultNotObserved


def drill(env: BenchEnv) -> Drill:
    redis = env.redis

    def verify() -> str:
        if not refuses(redis.port):
            raise FaultNotObserved(f"Redis's port {redis.port} still accepts connections")
        return f"Redis's port {redis.port} refuses connections"

    fault = Fault("redis-server killed (SIGKILL), started again afterwards", lambda: kill_redis(redis), verify,
                  redis.start)  # fmt: skip
    return Drill("kill_redis", fault)
