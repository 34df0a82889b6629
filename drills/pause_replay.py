"""Pause WAL replay on the replica under load (real lag: it serves reads but sees nothing new), then resume."""

from __future__ import annotations

from bench.env import BenchEnv
from drills.harness import Drill, Fault, FaultNotObserved


def drill(env: BenchEnv) -> Drill:
    pg = env.pg

    def verify() -> str:
        (state,) = pg.admin_sql("SELECT pg_get_wal_replay_pause_state()", server=pg.replica)[0]
        (primary_lsn,) = pg.admin_sql("SELECT pg_current_wal_lsn()::text")[0]
        (behind,) = pg.admin_sql(f"SELECT pg_wal_lsn_diff('{primary_lsn}', pg_last_wal_replay_lsn())",
                                 server=pg.replica)[0]  # fmt: skip
        if state != "paused" or behind <= 0:
            raise FaultNotObserved(f"replay state {state!r}, {behind} bytes behind the primary")
        return f"replay {state}; the replica is {int(behind)} bytes behind the primary after 1 s"

    def restore() -> None:
        pg.resume_replay()
        pg.wait_for_replica(timeout=30)

    fault = Fault("WAL replay paused on the replica", pg.pause_replay, verify, restore)
    return Drill("pause_replay", fault, reads_replica=True)
