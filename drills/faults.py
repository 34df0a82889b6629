"""Fault primitives for the drills, on the existing PgServer / RedisServer objects (loopback only).

Small and separately named so they can move into devenv/servers.py later:
- `freeze(pids)` / `thaw(pids)`: SIGSTOP / SIGCONT. A stopped process keeps its listening socket, so the
  kernel still completes TCP handshakes and ACKs bytes: clients hang instead of being refused, which is
  what a storage stall or a frozen host looks like (keepalives and tcp_user_timeout do not fire).
- `freeze_postgres(server)`: devenv's `PgServer.freeze()` (the postmaster first, then every child), with
  the pids remembered here for `thaw_all()`.
- `kill_redis(redis)`: SIGKILL, no shutdown; `redis.start()` starts it again on the same port.
- `answers(port, probe)` / `refuses(port)`: what a client sees, used to verify a fault really happened.
Everything frozen is remembered, and `thaw_all()` (called on exit) continues it, so a crashed drill never
leaves a stopped server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import struct

from devenv.servers import PgServer, RedisServer, wait_stopped

_FROZEN: set[int] = set()
# PostgreSQL's SSLRequest: any live server answers one byte ('S' or 'N') at once.
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
REDIS_PING = b"PING\r\n"


# --- processes (reading their state: devenv.servers.process_state / stopped) -------------------------
def freeze(pids: list[int], settle: float = 1.0) -> None:
    """SIGSTOP each pid, in order; wait (up to `settle` s) until the kernel shows each one stopped."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
        _FROZEN.add(pid)
    wait_stopped(pids, settle)  # a running process takes the signal at its next scheduling point


def thaw(pids: list[int]) -> None:
    """SIGCONT each pid (one that has gone meanwhile is skipped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        _FROZEN.discard(pid)


def thaw_all() -> None:
    """Continue everything still frozen (a drill that failed half-way)."""
    thaw(sorted(_FROZEN))


atexit.register(thaw_all)


# --- PostgreSQL -----------------------------------------------------------------------------------------
def freeze_postgres(server: PgServer) -> list[int]:
    """SIGSTOP the postmaster and all its children; return the stopped pids (postmaster first)."""
    pids = server.freeze()
    _FROZEN.update(pids)
    return pids


def thaw_postgres(pids: list[int]) -> None:
    """SIGCONT the children, then the postmaster (the reverse of freeze_postgres)."""
    thaw([*pids[1:], *pids[:1]])


def kill_postgres(server: PgServer) -> None:
    """Crash the server (pg_ctl stop -m immediate: no shutdown checkpoint)."""
    server.stop("immediate")


# --- Redis ---------------------------------------------------------------------------------------------
def redis_pid(redis: RedisServer) -> int:
    if redis.proc is None:
        raise RuntimeError("redis is not running under this RedisServer")
    return redis.proc.pid


def kill_redis(redis: RedisServer) -> None:
    """SIGKILL redis-server: no shutdown, connections reset."""
    if redis.proc is not None:
        redis.proc.kill()
        redis.proc.wait(10)
        redis.proc = None


# --- what a client sees ---------------------------------------------------------------------------------
def answers(port: int, probe: bytes, timeout: float = 1.0) -> bool:
    """Say whether a server on 127.0.0.1:port answers `probe` within `timeout` (False when refused too)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(probe)
            return bool(s.recv(1))
    except OSError:  # refused, reset or timed out
        return False


def refuses(port: int, timeout: float = 1.0) -> bool:
    """Say whether a connection to 127.0.0.1:port is refused (nothing listens)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
