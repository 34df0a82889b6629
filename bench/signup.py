"""Signup throughput through gunicorn against its ceiling, and PostgreSQL connections under load."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time

from bench.env import ROUNDS, SECONDS, BenchEnv
from devenv.servers import BASE_DIR, AppServer, PgCluster

LUA = BASE_DIR / "bench" / "signup.lua"
WORKERS, THREADS = 3, 4  # gunicorn.conf.py's defaults on 2 cores, for both apps


def wrk(url: str, connections: int, tag: str, seconds: int = SECONDS) -> dict:
    """Run wrk with the signup script; return requests/s and failures."""
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", str(LUA), url, "--", tag],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "failed": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def _count_connections(pg: PgCluster, app_name: str, stop: threading.Event, peaks: list) -> None:
    """Sample the app's connections to the primary and the replica; keep the peak of their sum."""
    peak = 0
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app_name}'"
    while not stop.is_set():
        peak = max(peak, sum(pg.admin_sql(sql, server=server)[0][0] for server in (pg.primary, pg.replica)))
        time.sleep(0.1)
    peaks.append(peak)


def _hammer(pg: PgCluster, url: str, app_name: str) -> tuple[dict, int]:
    stop, peaks = threading.Event(), []
    sampler = threading.Thread(target=_count_connections, args=(pg, app_name, stop, peaks))
    sampler.start()
    try:
        result = wrk(url, 100, f"hammer-{app_name}")
    finally:
        stop.set()
        sampler.join()
    return result, peaks[0]


def run(bench: BenchEnv) -> dict:
    django_app = AppServer(bench.env, workers=WORKERS, threads=THREADS)
    bare_app = AppServer(bench.env, app="bench.bare_wsgi:application", workers=WORKERS, threads=THREADS)
    try:
        for app in (django_app, bare_app):
            app.start(log=bench.root / f"app-{app.port}.log")
        print(f"signup POSTs: {ROUNDS} alternating rounds x {SECONDS}s, 2 wrk threads x 32 connections")
        runs: dict[str, list[dict]] = {"django": [], "bare": []}
        for i in range(ROUNDS):
            for name, app in (("django", django_app), ("bare", bare_app)):
                runs[name].append(wrk(app.url, 32, f"{name}{i}"))
                print(f"  round {i + 1} {name:6s} {runs[name][-1]['rps']:8.0f} req/s", flush=True)
        django_rps = statistics.median(r["rps"] for r in runs["django"])
        bare_rps = statistics.median(r["rps"] for r in runs["bare"])
        print("100 clients hammering each app; peak PostgreSQL connections (pg_stat_activity)")
        django_load, django_conns = _hammer(bench.pg, django_app.url, "signup-app")
        _, bare_conns = _hammer(bench.pg, bare_app.url, "bare-wsgi")
    finally:
        django_app.stop()
        bare_app.stop()
    failed = sum(r["failed"] for r in runs["django"]) + django_load["failed"]
    bound = WORKERS * THREADS * 2
    print(f"\nsignup POSTs/s   django+gunicorn {django_rps:8.0f}   bare WSGI+psycopg {bare_rps:8.0f}   "
          f"ratio {django_rps / bare_rps:.2f} of the ceiling")  # fmt: skip
    print(f"PG connections (primary + replica) with 100 clients   django {django_conns}   bare {bare_conns}   "
          f"(django's bound: {WORKERS} workers x {THREADS} threads x 2 aliases = {bound})")  # fmt: skip
    print(f"failed requests (non-3xx or socket errors) in the django runs: {failed}")
    return {
        "signup_posts_per_s": {"django": round(django_rps), "bare_wsgi": round(bare_rps),
                               "ratio": round(django_rps / bare_rps, 3)},
        "pg_connections_100_clients": {"django": django_conns, "bare": bare_conns, "bound": bound},
        "failed": failed,
    }  # fmt: skip
