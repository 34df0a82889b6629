"""Shared set-up for every benchmark: a throwaway PostgreSQL primary + replica and Redis, migrated.

`services(production=True)` (what `make bench` and `make soak` use) runs what production runs, and
`production_settings()` says so: PostgreSQL with `fsync`, `full_page_writes` and `synchronous_commit` on
(devenv's clusters turn the first two off for fast tests), the app logging one JSON line per request at
INFO, and gunicorn's workers and threads computed from the ECS task definition's defaults
(infra/terraform/ecs.tf, variables.tf). What a benchmark still changes for measurement is listed in
`MEASUREMENT_CHANGES` and printed beside its figures. The drills keep the fast cluster (`production=False`).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devenv.servers import BASE_DIR, PgCluster, RedisServer, ServerCommandFailed, local_app_env, local_owner_env

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TERRAFORM = BASE_DIR / "infra" / "terraform"
# What production runs (LOG_LEVEL and LOG_FORMAT are unset in ecs.tf: settings.py's defaults are INFO, json).
PRODUCTION_LOG = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
LOGGING_OFF = {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}  # measurement only: no request line at all
DURABLE = ("fsync", "full_page_writes", "synchronous_commit")
# Differences from production that remain, printed with every figure.
MEASUREMENT_CHANGES = (
    "loopback HTTP straight to gunicorn (no ALB, no nginx sidecar; HTTPS=0, so no TLS redirect)",
    "PostgreSQL on loopback without TLS or IAM auth (DATABASE_SSLMODE=disable), replica on the same host",
    "stdout of gunicorn to a file (production: a pipe to the awslogs driver)",
    "load generator (wrk) on the same 2 CPUs as the apps and PostgreSQL",
)


def _tf_default(variable: str) -> int:
    """Return a numeric default of infra/terraform/variables.tf."""
    text = (TERRAFORM / "variables.tf").read_text()
    found = re.search(rf'variable "{variable}" \{{.*?default\s*=\s*(\d+)', text, re.S)
    if not found:
        raise RuntimeError(f"infra/terraform/variables.tf has no numeric default for {variable}")
    return int(found.group(1))


def task_gunicorn() -> tuple[int, int]:
    """Return (WEB_CONCURRENCY, GUNICORN_THREADS) of the ECS web task at the Terraform defaults."""
    ecs = (TERRAFORM / "ecs.tf").read_text()
    if "web_concurrency = max(2, floor(var.app_cpu * 2 / 1024) + 1)" not in ecs:
        raise RuntimeError("infra/terraform/ecs.tf computes web_concurrency differently: update bench/env.py")
    return max(2, math.floor(_tf_default("app_cpu") * 2 / 1024) + 1), _tf_default("gunicorn_threads")


@dataclass
class BenchEnv:
    root: Path
    pg: PgCluster
    redis: RedisServer
    env: dict  # the app's environment variables for these services
    production: bool = False

    def manage(self, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a manage.py command; on failure raise with what it printed on stderr."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, capture_output=True,
                              env={**os.environ, **self.env, **(extra_env or {})})  # fmt: skip
        if done.returncode:
            raise ServerCommandFailed(done.returncode, done.args, done.stdout.decode(), done.stderr.decode())
        return done

    def pg_settings(self) -> dict[str, str]:
        """Return fsync, full_page_writes and synchronous_commit as the primary and the replica run them."""
        found = {}
        for server in (self.pg.primary, self.pg.replica):
            rows = self.pg.admin_sql(f"SELECT name, setting FROM pg_settings WHERE name IN {DURABLE}", server=server)
            found[server.datadir.name] = " ".join(f"{name}={value}" for name, value in sorted(rows))
        return found

    def describe(self) -> list[str]:
        """Lines saying what this run measures: production's settings, and what differs for measurement."""
        workers, threads = task_gunicorn()
        settings = self.pg_settings()
        lines = [
            "configuration (as production unless listed under 'changed for measurement'):",
            f"  PostgreSQL primary: {settings['primary']}; replica: {settings['replica']}",
            f"  app log: LOG_LEVEL={self.env['LOG_LEVEL']} LOG_FORMAT={self.env['LOG_FORMAT']} "
            "(one JSON line per request, as production)",
            f"  gunicorn: gunicorn.conf.py with WEB_CONCURRENCY={workers} GUNICORN_THREADS={threads} "
            "(ecs.tf at the Terraform defaults: app_cpu, gunicorn_threads)",
            "  changed for measurement:",
        ]
        return lines + [f"    - {change}" for change in MEASUREMENT_CHANGES]


def _durable(pg: PgCluster) -> None:
    """Turn fsync and full-page writes back on (devenv's clusters turn them off for fast tests)."""
    for server in (pg.primary, pg.replica):
        pg.admin_sql("ALTER SYSTEM SET fsync = on", "ALTER SYSTEM SET full_page_writes = on",
                     "ALTER SYSTEM RESET synchronous_commit", "SELECT pg_reload_conf()", server=server)  # fmt: skip


@contextmanager
def services(production: bool = False) -> Iterator[BenchEnv]:
    root = Path(tempfile.mkdtemp(prefix="signup-bench-"))
    os.chmod(root, 0o755)
    pg, redis = PgCluster(root / "pg"), RedisServer(root / "redis")
    try:
        print("bench: starting PostgreSQL primary + replica and Redis ...", flush=True)
        pg.create()
        if production:
            _durable(pg)
        redis.start()
        # TRUSTED_PROXY_COUNT=1 as behind the ALB: load generators give each simulated person their own
        # X-Forwarded-For address, so the per-IP signup rate limit applies as in production.
        log = PRODUCTION_LOG if production else {"LOG_LEVEL": "WARNING"}
        env = {"SECRET_KEY": secrets.token_urlsafe(50), "STATIC_ROOT": str(root / "static"), **log,
               "TRUSTED_PROXY_COUNT": "1", **local_app_env(pg, redis)}  # fmt: skip
        bench = BenchEnv(root, pg, redis, env, production)
        bench.manage("migrate", "--noinput", extra_env=local_owner_env(pg))  # as the owner; the app as its role
        bench.manage("setup_db_roles", extra_env=local_owner_env(pg))
        bench.manage("collectstatic", "--noinput")
        yield bench
    finally:
        redis.stop()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)
