"""Shared set-up for every benchmark: a throwaway PostgreSQL primary + replica and Redis, migrated."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devenv.servers import BASE_DIR, PgCluster, RedisServer, local_app_env, local_owner_env

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


@dataclass
class BenchEnv:
    root: Path
    pg: PgCluster
    redis: RedisServer
    env: dict  # the app's environment variables for these services

    def manage(self, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True, capture_output=True,
                              env={**os.environ, **self.env, **(extra_env or {})})  # fmt: skip


@contextmanager
def services() -> Iterator[BenchEnv]:
    root = Path(tempfile.mkdtemp(prefix="signup-bench-"))
    os.chmod(root, 0o755)
    pg, redis = PgCluster(root / "pg"), RedisServer(root / "redis")
    try:
        print("bench: starting PostgreSQL primary + replica and Redis ...", flush=True)
        pg.create()
        redis.start()
        # TRUSTED_PROXY_COUNT=1 as behind the ALB: load generators give each simulated person their own
        # X-Forwarded-For address, so the per-IP signup rate limit applies as in production.
        env = {"SECRET_KEY": secrets.token_urlsafe(50), "STATIC_ROOT": str(root / "static"), "LOG_LEVEL": "WARNING",
               "TRUSTED_PROXY_COUNT": "1", **local_app_env(pg, redis)}  # fmt: skip
        bench = BenchEnv(root, pg, redis, env)
        bench.manage("migrate", "--noinput", extra_env=local_owner_env(pg))  # as the owner; the app as its role
        bench.manage("setup_db_roles", extra_env=local_owner_env(pg))
        bench.manage("collectstatic", "--noinput")
        yield bench
    finally:
        redis.stop()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)
