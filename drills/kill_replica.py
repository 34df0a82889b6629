"""Kill the replica (a crash: pg_ctl stop -m immediate) under load, then start it again."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.faults import kill_postgres, refuses
from drills.harness import Drill, Fault, FaultNotObserved, get_pages_all_200_within


def drill(env: BenchEnv) -> Drill:
    replica = env.pg.replica

    def verify() -> str:
        if not refuses(replica.port):
            raise FaultNotObserved(f"the replica's port {replica.port} still accepts connections")
        return f"the replica's port {replica.port} refuses connections"

    def restore() -> None:
        replica.start()
        env.pg.wait_for_replica(timeout=30)

    fault = Fault("replica crashed (pg_ctl stop -m immediate), started again afterwards",
                  lambda: kill_postgres(replica), verify, restore)  # fmt: skip
    return Drill("kill_replica", fault, reads_replica=True, checks=[get_pages_all_200_within(10)])
