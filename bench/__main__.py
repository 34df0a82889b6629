"""`make bench`: signup throughput against its ceiling, and database connections under load.

Everything runs in one process tree on this (shared, noisy) machine, so results are ratios of runs
measured side by side, alternating A/B rounds; each figure is the median of its rounds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from devenv.servers import BASE_DIR, AppServer, PgCluster, RedisServer

RESULTS = BASE_DIR / "bench" / "results"
LUA = BASE_DIR / "bench" / "signup.lua"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
WORKERS, THREADS = 3, 4  # gunicorn.conf.py's defaults on 2 cores, for both apps


def _wrk(url: str, connections: int, tag: str) -> dict:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{SECONDS}s", "-s", str(LUA), url, "--", tag],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def _count_connections(pg: PgCluster, app_name: str, stop: threading.Event, peaks: list) -> None:
    """Sample the app's connections to the primary and the replica; keep the peak of their sum."""
    peak = 0
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app_name}'"
    while not stop.is_set():
        rows = [pg.admin_sql(sql, server=server)[0] for server in (pg.primary, pg.replica)]
        rows = [(sum(r[0] for r in rows),)]
        peak = max(peak, rows[0][0])
        time.sleep(0.1)
    peaks.append(peak)


def _hammer(pg: PgCluster, url: str, app_name: str) -> tuple[dict, int]:
    stop, peaks = threading.Event(), []
    sampler = threading.Thread(target=_count_connections, args=(pg, app_name, stop, peaks))
    sampler.start()
    try:
        result = _wrk(url, 100, f"hammer-{app_name}")
    finally:
        stop.set()
        sampler.join()
    return result, peaks[0]


def main() -> int:
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="signup-bench-"))
    os.chmod(root, 0o755)
    pg, redis = PgCluster(root / "pg"), RedisServer(root / "redis")
    apps: list[AppServer] = []
    try:
        print("bench: starting PostgreSQL primary + replica and Redis ...", flush=True)
        pg.create()
        redis.start()
        env = {"DATABASE_URL": pg.primary_url, "DATABASE_REPLICA_URLS": pg.replica_url, "REDIS_URL": redis.url,
               "SECRET_KEY": "bench-" + "k" * 50, "STATIC_ROOT": str(root / "static"), "LOG_LEVEL": "WARNING"}  # fmt: skip
        for cmd in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run([sys.executable, "manage.py", *cmd], cwd=BASE_DIR, env={**os.environ, **env},
                           check=True, capture_output=True)  # fmt: skip
        django_app = AppServer(env, workers=WORKERS, threads=THREADS)
        bare_app = AppServer(env, app="bench.bare_wsgi:application", workers=WORKERS, threads=THREADS)
        for app in (django_app, bare_app):
            app.start(log=root / f"{app.port}.log")
            apps.append(app)

        print(f"bench: signup POSTs, {ROUNDS} alternating rounds x {SECONDS}s, 2 wrk threads x 32 connections")
        runs: dict[str, list[dict]] = {"django": [], "bare": []}
        for i in range(ROUNDS):
            for name, app in (("django", django_app), ("bare", bare_app)):
                runs[name].append(_wrk(app.url, 32, f"{name}{i}"))
                print(f"  round {i + 1} {name:6s} {runs[name][-1]['rps']:8.0f} req/s", flush=True)
        django_rps = statistics.median(r["rps"] for r in runs["django"])
        bare_rps = statistics.median(r["rps"] for r in runs["bare"])

        print("bench: 100 clients hammering each app; peak PostgreSQL connections (pg_stat_activity)")
        django_load, django_conns = _hammer(pg, django_app.url, "signup-app")
        bare_load, bare_conns = _hammer(pg, bare_app.url, "bare-wsgi")
        with psycopg.connect(pg.primary_url) as conn:
            rows = conn.execute("SELECT count(*) FROM users_signup").fetchone()[0]

        failures = sum(r["non_3xx"] + r["socket_errors"] for rs in runs.values() for r in rs)
        failures += django_load["non_3xx"] + django_load["socket_errors"]
        summary = {
            "signup_posts_per_s": {"django_gunicorn": round(django_rps), "bare_wsgi_psycopg": round(bare_rps),
                                   "ratio": round(django_rps / bare_rps, 3)},
            "pg_connections_under_100_clients": {"django": django_conns, "bare": bare_conns,
                                                 "bound": WORKERS * THREADS * 2},
            "django_failed_requests": failures,
            "rows_written": rows,
        }  # fmt: skip
        print()
        print(f"signup POSTs/s   django+gunicorn {django_rps:8.0f}   bare WSGI+psycopg {bare_rps:8.0f}   "
              f"ratio {django_rps / bare_rps:.2f} of the ceiling")  # fmt: skip
        print(f"PG connections (primary + replica) with 100 clients   django {django_conns}   bare {bare_conns}   "
              f"(django's bound: {WORKERS} workers x {THREADS} threads x 2 aliases = {WORKERS * THREADS * 2})")  # fmt: skip
        print(f"failed requests (non-3xx or socket errors) in the django runs: {failures}")
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "signup.json").write_text(json.dumps(summary, indent=2))
        return 0 if failures == 0 else 1
    finally:
        for app in apps:
            app.stop()
        redis.stop()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
