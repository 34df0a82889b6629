"""Freeze the primary (SIGSTOP of the postmaster and every backend) under load, then SIGCONT.

The kernel keeps accepting connections and ACKing bytes, so nothing is refused and no keepalive fires:
only a client-side deadline helps (a storage stall or a frozen instance on RDS).
"""

from __future__ import annotations

from collections import Counter

from bench.env import BenchEnv
from devenv.servers import PgServer
from drills.faults import PG_SSL_REQUEST, answers, freeze_postgres, process_state, refuses, stopped, thaw_postgres
from drills.harness import HANG_FAULT, Drill, Fault, FaultNotObserved, signups_answer_503_within


def postgres_freeze(env: BenchEnv, server: PgServer, label: str) -> Fault:
    """A Fault that freezes `server` and all its processes, verified from /proc and from a client."""
    frozen: list[int] = []

    def inject() -> None:
        frozen[:] = freeze_postgres(server)

    def verify() -> str:
        states = Counter(process_state(pid) for pid in frozen)
        halted = sum(stopped(pid) for pid in frozen)
        if halted != len(frozen) or answers(server.port, PG_SSL_REQUEST) or refuses(server.port):
            raise FaultNotObserved(f"{halted} of {len(frozen)} processes stopped {dict(states)}, or the port answers")
        return (f"postmaster {frozen[0]} and {len(frozen) - 1} children stopped (states {dict(states)}); port "
                f"{server.port} accepts TCP but answers nothing")  # fmt: skip

    def restore() -> None:
        thaw_postgres(frozen)
        env.pg.wait_for_replica(timeout=30)

    return Fault(f"{label}: postmaster and every child SIGSTOPped, SIGCONT afterwards", inject, verify, restore)


def drill(env: BenchEnv) -> Drill:
    fault = postgres_freeze(env, env.pg.primary, "primary frozen")
    return Drill("freeze_primary", fault, fault_seconds=HANG_FAULT, checks=[signups_answer_503_within(10)])
