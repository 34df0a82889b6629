"""`make soak`: mixed load on production's configuration for SOAK_SECONDS (default 300), loopback only.

wrk sends GET / with one signup in every SOAK_SIGNUP_EVERY requests (bench/soak.lua) to our app under
gunicorn (the ECS task's workers and threads, gunicorn.conf.py's recycling), with `manage.py worker` sending
the confirmation emails. Printed at the end:
- requests, errors (non-2xx/3xx, socket errors, timeouts), latency; signups acknowledged (302 to the thanks
  page) against rows stored, and the email queue by status;
- each gunicorn worker's RSS over time (sampled from /proc every SOAK_SAMPLE seconds) as a table and a
  small chart, the restarts gunicorn made (max_requests) and how long each left the task a worker short;
- PostgreSQL connections (primary + replica, the app's role) and Redis memory over time.
`run()` returns the figures; tests/bench/test_soak.py runs a short soak and checks them.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.env import BenchEnv, task_gunicorn
from devenv.servers import BASE_DIR, AppServer, children

LUA = BASE_DIR / "bench" / "soak.lua"
SPARK = "▁▂▃▄▅▆▇█"
# Besides bench.env.MEASUREMENT_CHANGES: the emails go to the worker's stdout, not SES.
WORKER_ENV = {"EMAIL_PROVIDER": "console"}


def _settings() -> dict:
    return {"seconds": int(os.environ.get("SOAK_SECONDS") or 300),
            "signup_every": int(os.environ.get("SOAK_SIGNUP_EVERY") or 50),
            "sample": float(os.environ.get("SOAK_SAMPLE") or 1.0),
            "connections": int(os.environ.get("SOAK_CONNECTIONS") or 32)}  # fmt: skip


@dataclass
class Samples:
    """What the sampler thread saw: RSS per worker pid, connections and Redis memory, over time."""

    started: float = field(default_factory=time.time)  # wall clock, to place the app's log lines
    rss: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # pid -> [(t, MB)]
    pg: list[tuple[float, int]] = field(default_factory=list)
    redis: list[tuple[float, float]] = field(default_factory=list)


def rss_mb(pid: int) -> float | None:
    """Return the resident set size of `pid` in MB (/proc/<pid>/status VmRSS), None once it has gone."""
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _sample(bench: BenchEnv, master: int, every: float, stop: threading.Event, out: Samples) -> None:
    import redis

    client = redis.Redis.from_url(bench.redis.url, socket_timeout=2)
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{bench.pg.user}'"
    started, out.started = time.monotonic(), time.time()
    while not stop.is_set():
        t = time.monotonic() - started
        for pid in children(master):
            mb = rss_mb(pid)
            if mb is not None:
                out.rss.setdefault(pid, []).append((t, mb))
        out.pg.append((t, sum(bench.pg.admin_sql(sql, server=s)[0][0] for s in (bench.pg.primary, bench.pg.replica))))
        out.redis.append((t, client.info("memory")["used_memory"] / 2**20))
        stop.wait(every)


def _wrk(url: str, settings: dict, prefix: str, acks: Path) -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("soak: wrk is not installed (apt-get install wrk)")
    cmd = ["wrk", "-t", "2", "-c", str(settings["connections"]), "-d", f"{settings['seconds']}s", "--timeout", "10s",
           "-s", str(LUA), url, "--", prefix, str(settings["signup_every"]), str(acks)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = re.search(r"p50_ms ([\d.]+) p99_ms ([\d.]+) max_ms ([\d.]+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
        "acknowledged": int(re.search(r"acknowledged (\d+)", out).group(1)),
        "p50_ms": float(latency.group(1)), "p99_ms": float(latency.group(2)), "max_ms": float(latency.group(3)),
    }  # fmt: skip


def _max_requests(cmd_args: str) -> int:
    """gunicorn's max_requests: GUNICORN_CMD_ARGS' --max-requests over gunicorn.conf.py's."""
    given = re.search(r"--max-requests[= ](\d+)", cmd_args)
    return int(given.group(1)) if given else runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))["max_requests"]


def _restarts(log: Path, workers: int) -> dict:
    """Count the workers gunicorn recycled, and the seconds from each 'Autorestarting' to the next boot."""
    recycled, boots = [], []
    for line in log.read_text().splitlines():
        doc = json.loads(line) if line.startswith("{") else {}
        if doc.get("name") == "gunicorn.error" and doc["message"].startswith(("Autorestarting", "Booting worker")):
            when = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()
            (boots if doc["message"].startswith("Booting") else recycled).append(when)
    gaps = [min((b for b in boots if b >= when), default=when) - when for when in recycled]
    return {"restarts": len(boots) - workers, "recycled": len(recycled),
            "gap_ms_median": round(statistics.median(gaps) * 1000) if gaps else None,
            "gap_ms_max": round(max(gaps) * 1000) if gaps else None}  # fmt: skip


def _served(log: Path, started: float, seconds: float, columns: int = 10) -> list[float]:
    """Requests per second the app logged in each of `columns` slices of the run (its request lines)."""
    counts = [0] * columns
    for line in log.read_text().splitlines():
        if line.startswith('{"levelname": "INFO", "name": "project.request"'):
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            t = datetime.fromisoformat(stamp).timestamp() - started
            if 0 <= t < seconds:
                counts[int(t / seconds * columns)] += 1
    return [n / (seconds / columns) for n in counts]


def _acknowledged(acks: Path) -> list[str]:
    """The email of each acknowledged signup, as bench/soak.lua wrote them (one file per wrk thread)."""
    return [email for path in acks.parent.glob(f"{acks.name}-*") for email in path.read_text().split()]


def _stored(bench: BenchEnv, prefix: str) -> tuple[set[str], dict[str, int]]:
    """Emails stored by this soak, and the email queue by status."""
    rows = bench.pg.admin_sql(f"SELECT email FROM users_signup WHERE email LIKE '{prefix}-%'", dbname=bench.pg.db)
    queue = bench.pg.admin_sql("SELECT status, count(*) FROM django_tasks_database_dbtaskresult GROUP BY status",
                               dbname=bench.pg.db)  # fmt: skip
    return {email for (email,) in rows}, dict(queue)


def _spark(values: list[float | None], low: float, high: float) -> str:
    """One character per value, ▁ (low) to █ (high); a space where the worker did not exist."""
    span = (high - low) or 1.0
    return "".join(" " if v is None else SPARK[min(int((v - low) / span * len(SPARK)), len(SPARK) - 1)]
                   for v in values)  # fmt: skip


def _buckets(points: list[tuple[float, float]], seconds: float, columns: int) -> list[float | None]:
    """The last value in each of `columns` equal slices of the run (None where nothing was sampled)."""
    out: list[float | None] = [None] * columns
    for t, value in points:
        out[min(int(t / seconds * columns), columns - 1)] = value
    return out


def _filled(cells: list[float | None]) -> list[float | None]:
    """Carry each value forward over empty slices within the worker's life (the chart is wider than the samples)."""
    known = [i for i, c in enumerate(cells) if c is not None]
    out, last = list(cells), None
    for i in range(known[0], known[-1] + 1) if known else ():
        out[i] = last = cells[i] if cells[i] is not None else last
    return out


def report(figures: dict, samples: Samples, seconds: float, columns: int = 10) -> list[str]:
    """The printed summary: figures, then RSS per worker, connections and Redis memory over time."""
    w, s = figures["wrk"], figures
    lines = [
        f"requests {w['requests']} ({w['requests'] / seconds:.0f}/s)   errors {s['errors']} "
        f"(non-2xx/3xx {w['non_2xx_3xx']}, socket errors/timeouts {w['socket_errors']})   "
        f"latency p50 {w['p50_ms']:.0f} ms p99 {w['p99_ms']:.0f} ms max {w['max_ms']:.0f} ms",
        f"signups acknowledged {w['acknowledged']}   stored {s['stored']}   acknowledged but not stored "
        f"{s['acknowledged_missing']} (each checked by email)   stored, answer unread when wrk stopped "
        f"{s['unanswered_stored']}   email queue {s['queue']}",
        f"worker restarts (max_requests {s['max_requests'] or 'off'}): {s['restarts']['restarts']}   "
        f"a worker short for median {s['restarts']['gap_ms_median']} ms, max {s['restarts']['gap_ms_max']} ms",
        f"RSS per gunicorn worker (MB), last sample in each {seconds / columns:.0f} s of the run:",
    ]
    everything = [mb for points in samples.rss.values() for _, mb in points]
    low, high = (min(everything), max(everything)) if everything else (0, 1)
    lines.append("  pid      " + " ".join(f"{(i + 1) * seconds / columns:>6.0f}s" for i in range(columns))
                 + f"   chart: {SPARK[0]} {low:.1f} MB .. {SPARK[-1]} {high:.1f} MB")  # fmt: skip
    for pid, points in sorted(samples.rss.items(), key=lambda item: item[1][0][0]):
        cells = _buckets(points, seconds, columns)
        lines.append(f"  {pid:<8d} " + " ".join(f"{c:7.1f}" if c is not None else "      ." for c in cells)
                     + f"   {_spark(_filled(_buckets(points, seconds, 40)), low, high)}")  # fmt: skip
    served = [(i * seconds / columns, rate) for i, rate in enumerate(figures["served_per_s"])]
    for label, points, fmt in (("requests/s", served, "{:7.0f}"), ("PG connections", samples.pg, "{:7.0f}"),
                               ("Redis MB", samples.redis, "{:7.2f}")):  # fmt: skip
        cells = _buckets(points, seconds, columns)
        lines.append(f"  {label:<9s}"[:11] + " ".join(fmt.format(c) if c is not None else "      ." for c in cells))
    return lines


def run(bench: BenchEnv) -> dict:
    settings = _settings()
    workers, threads = task_gunicorn()
    prefix = f"soak{int(time.time())}"
    app = AppServer(bench.env, workers=workers, threads=threads)
    app_log, worker_log = bench.root / "soak-app.log", bench.root / "soak-worker.log"
    app.start(log=app_log)
    with worker_log.open("ab") as out:
        env = {**os.environ, **bench.env, **WORKER_ENV}
        worker = subprocess.Popen([sys.executable, "manage.py", "worker", "--interval", "0.2"], cwd=BASE_DIR,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    samples, stop = Samples(), threading.Event()
    sampler = threading.Thread(target=_sample, args=(bench, app.proc.pid, settings["sample"], stop, samples))
    print(
        f"soak: {settings['seconds']} s, {workers} workers x {threads} threads, {settings['connections']} "
        f"connections, one signup in {settings['signup_every']} requests, the email worker running",
        flush=True,
    )
    try:
        sampler.start()
        result = _wrk(app.url, settings, prefix, bench.root / "acks")
        time.sleep(2 * settings["sample"])
    finally:
        stop.set()
        sampler.join()
        app.stop()
        worker.terminate()
        worker.wait(30)
    stored_emails, queue = _stored(bench, prefix)
    acknowledged = _acknowledged(bench.root / "acks")
    stored = len(stored_emails)
    missing = len(set(acknowledged) - stored_emails)  # acknowledged to a person, not in the database: none may be
    max_requests = _max_requests({**os.environ, **bench.env}.get("GUNICORN_CMD_ARGS", ""))
    figures = {"wrk": result, "errors": result["non_2xx_3xx"] + result["socket_errors"], "stored": stored,
               "acknowledged_checked": len(acknowledged), "acknowledged_missing": missing,
               "unanswered_stored": len(stored_emails - set(acknowledged)),
               "queue": queue, "restarts": _restarts(app_log, workers), "max_requests": max_requests,
               "workers": workers, "threads": threads,
               "rss_mb": {str(pid): [round(mb, 1) for _, mb in points] for pid, points in samples.rss.items()},
               "served_per_s": [round(r) for r in _served(app_log, samples.started, settings["seconds"])],
               "pg_connections_max": max((n for _, n in samples.pg), default=0),
               "redis_mb_max": round(max((mb for _, mb in samples.redis), default=0), 2)}  # fmt: skip
    print("\n".join(report(figures, samples, settings["seconds"])))
    figures["failed"] = bool(figures["errors"] or missing or len(acknowledged) != result["acknowledged"]
                             or not result["acknowledged"])  # fmt: skip
    return figures


def main() -> int:
    from bench.env import services

    with services(production=True) as bench:
        print("\n".join(bench.describe()))
        print("    - the email worker sends through Django's console backend (its stdout), not SES", flush=True)
        figures = run(bench)
    results = BASE_DIR / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "soak.json").write_text(json.dumps(figures, indent=2))
    print("soak: PASS" if not figures["failed"] else "soak: FAIL (errors, or stored != acknowledged)")
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
