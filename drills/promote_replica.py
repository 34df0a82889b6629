"""Promote the replica under load, as an RDS Multi-AZ failover does, and move the writer endpoint to it.

The app reaches the primary through a movable endpoint (drills/endpoint.py), as through RDS's DNS name.
Fault: the primary shuts down (fast: its walsender first sends the standby every byte of WAL, which is
what RDS's synchronous Multi-AZ standby guarantees; locally the replica is asynchronous, so a crash here
would lose commits by design of the test set-up, not of the app), the replica is promoted
(`pg_ctl promote`, a new timeline), and the endpoint moves to it, dropping open connections. The old
primary stays down (RDS rebuilds it as the new standby later). The app's replica alias still names the
promoted server. Afterwards every acknowledged signup must be on the new primary.

This drill leaves the replica as the primary: `python -m drills` runs it last.
"""

from __future__ import annotations

from bench.env import BenchEnv
from drills.endpoint import Endpoint
from drills.faults import refuses
from drills.harness import Drill, Fault, FaultNotObserved


def drill(env: BenchEnv) -> Drill:
    pg = env.pg
    endpoint = Endpoint(pg.primary.port)
    primary_url = env.env["DATABASE_URL"].replace(f":{pg.primary.port}/", f":{endpoint.port}/")
    if primary_url == env.env["DATABASE_URL"]:
        raise RuntimeError("promote_replica: the primary's port is not in DATABASE_URL")

    def inject() -> None:
        pg.wait_for_replica(timeout=10)
        pg.primary.stop("fast")
        pg.replica._run("pg_ctl", "promote", "-w", "-t", "30", "-D", str(pg.replica.datadir))
        endpoint.switch(pg.replica.port)

    def verify() -> str:
        recovery, walfile = pg.admin_sql("SELECT pg_is_in_recovery(), pg_walfile_name(pg_current_wal_lsn())",
                                         server=pg.replica)[0]  # fmt: skip
        timeline = int(walfile[:8], 16)
        if recovery or timeline < 2 or not refuses(pg.primary.port):
            raise FaultNotObserved(f"in recovery {recovery}, timeline {timeline}, old primary still up?")
        return (
            f"old primary down; the replica promoted (timeline {timeline}, out of recovery); "
            f"endpoint :{endpoint.port} now leads to :{pg.replica.port}"
        )

    fault = Fault("primary shut down, replica promoted, writer endpoint moved to it", inject, verify,
                  restore=lambda: None)  # fmt: skip
    return Drill("promote_replica", fault, app_env={"DATABASE_URL": primary_url}, primary=lambda: pg.replica,
                 cleanup=[endpoint.close])  # fmt: skip
