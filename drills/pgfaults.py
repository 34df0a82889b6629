"""The PostgreSQL faults several drills share, each seen from outside before it counts as happened."""

from __future__ import annotations

from collections import Counter

from bench.env import BenchEnv
from devenv.servers import PgServer, process_state, stopped
from drills.faults import (
    PG_SSL_REQUEST,
    answers,
    freeze_postgres,
    kill_postgres,
    refuses,
    thaw_postgres,
)
from drills.harness import Fault, FaultNotObserved


def postgres_crash(env: BenchEnv, server: PgServer, label: str) -> Fault:
    """Crash `server` (pg_ctl stop -m immediate); start it again and let the replica catch up."""

    def verify() -> str:
        if not refuses(server.port):
            raise FaultNotObserved(f"the {label}'s port {server.port} still accepts connections")
        return f"the {label}'s port {server.port} refuses connections"

    def restore() -> None:
        server.start()
        env.pg.wait_for_replica(timeout=30)

    return Fault(f"{label} crashed (pg_ctl stop -m immediate), started again afterwards",
                 lambda: kill_postgres(server), verify, restore)  # fmt: skip


def postgres_freeze(env: BenchEnv, server: PgServer, label: str) -> Fault:
    """Freeze `server` and all its processes (SIGSTOP), verified from /proc and from a client; SIGCONT after."""
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

    return Fault(f"{label} frozen: postmaster and every child SIGSTOPped, SIGCONT afterwards", inject, verify, restore)
