"""Signup throughput and CPU through gunicorn against its ceiling; GET / against a Flask peer; connections.

Our app runs twice, side by side: with production's request log (INFO, one JSON line per request) and with
logging off (WARNING), so each round measures the log's share as well as the ratios.
- signup: POST /signup/ on our app against bench.bare_wsgi (the same INSERT with psycopg, nothing else),
  alternating rounds, the median of the rounds' ratios; app CPU per signup (user + system time of
  gunicorn's processes, from /proc) beside the bare app's.
- home: GET / on our app against bench.flask_counter (Flask connecting to PostgreSQL per request, as the
  tutorials do), alternating rounds, the median of the rounds' ratios.
- the peak number of PostgreSQL connections while 100 clients hammer each signup app.
All apps run under gunicorn.conf.py with the ECS task's workers and threads (bench.env.task_gunicorn).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from bench.env import LOGGING_OFF, ROUNDS, SECONDS, BenchEnv, task_gunicorn
from devenv.servers import BASE_DIR, AppServer, PgCluster, children

LUA = BASE_DIR / "bench" / "signup.lua"
WORKERS, THREADS = task_gunicorn()  # the ECS web task's, for every app
CONNECTIONS = 32  # per measured round
WRK_GROUPS = 4  # wrk processes per round, started a quarter of a second apart (see `wrk`)
ATTEMPTS = 5  # runs of a round at most, while one worker takes every connection (see `measured`)


def wrk(
    url: str, connections: int, tag: str, seconds: int = SECONDS, script: Path | None = LUA, extra: str = ""
) -> dict:
    """Run wrk (with the signup script unless `script` is None); return requests/s, requests and failures.

    The connections open in WRK_GROUPS groups a quarter of a second apart (a wrk process each, its own tag),
    as they do behind a proxy while load grows, not all at once (see `measured`).
    `extra`: more form fields for each signup POST, urlencoded (the custom fields' answers and form version).
    """
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    runs = []
    for group in range(WRK_GROUPS):
        args = ["-s", str(script), url, "--", f"{tag}g{group}", *([extra] if extra else [])] if script else [url]
        share = connections // WRK_GROUPS + (group < connections % WRK_GROUPS)
        runs.append(subprocess.Popen(["wrk", "-t", "1", "-c", str(share), "-d", f"{seconds}s", *args],
                                     stdout=subprocess.PIPE, text=True))  # fmt: skip
        time.sleep(0.25)
    result = {"rps": 0.0, "requests": 0, "failed": 0}
    for run in runs:
        out = run.communicate()[0]
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, run.args, out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        result["rps"] += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        result["requests"] += int(re.search(r"(\d+) requests in", out).group(1))
        result["failed"] += (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return result


def cpu_seconds(app: AppServer) -> float:
    """User + system CPU seconds used so far by gunicorn's master and its workers (/proc/<pid>/stat)."""
    total = 0
    for pid in (app.proc.pid, *children(app.proc.pid)):
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
        if pid == app.proc.pid:  # workers gunicorn recycled (max_requests): their time, once reaped
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def measured(app: AppServer, url: str, tag: str, script: Path | None = LUA, extra: str = "") -> dict:
    """One wrk round of CONNECTIONS, with the app's CPU milliseconds per request and their split by worker.

    A burst of new connections can land on one worker (`AppServer.connections_per_worker`), which keeps them for
    the round: 32 connections opened at once often all went to one worker, which measured one worker, not the
    app. `wrk` opens them in groups, as load grows behind a proxy; a round in which a worker still got under a
    quarter of its share is run again (ATTEMPTS runs at most) and said.
    """
    for attempt in range(ATTEMPTS):
        split: list[list[int]] = []
        sampler = threading.Timer(1.5, lambda found=split: found.append(app.connections_per_worker()))
        sampler.start()
        before = cpu_seconds(app)
        result = wrk(url, CONNECTIONS, f"{tag}-{attempt}" if attempt else tag, script=script, extra=extra)
        result["cpu_ms"] = (cpu_seconds(app) - before) * 1000 / max(result["requests"], 1)
        sampler.join()
        result["split"] = split[0] if split else []
        if len(result["split"]) > 1 and min(result["split"]) >= CONNECTIONS / len(result["split"]) / 4:
            break
        print(f"    (connections per worker {result['split']}: one worker took nearly all; round run again)",
              flush=True)  # fmt: skip
    return result


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
        result = wrk(url, 100, f"hammer-{app_name}", extra=PLAIN)  # the bare form (0): see PLAIN
    finally:
        stop.set()
        sampler.join()
    return result, peaks[0]


def _alternate(apps: dict[str, AppServer], label: str, script: Path | None,
               extras: dict[str, str] | None = None) -> dict[str, list[dict]]:  # fmt: skip
    runs: dict[str, list[dict]] = {name: [] for name in apps}
    for i in range(ROUNDS):
        for name, app in apps.items():
            runs[name].append(measured(app, app.url, f"{name}{i}", script=script, extra=(extras or {}).get(name, "")))
            last = runs[name][-1]
            print(f"  round {i + 1} {label} {name:6s} {last['rps']:8.0f} req/s  {last['cpu_ms']:5.2f} ms CPU/request"
                  f"  connections per worker {last['split']}", flush=True)  # fmt: skip
    return runs


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _ratio(runs: dict[str, list[dict]], ours: str, peer: str, key: str = "rps") -> float:
    """The median over rounds of each round's ratio (both measured within seconds of each other)."""
    return statistics.median(a[key] / b[key] for a, b in zip(runs[ours], runs[peer], strict=True))


# The plain signup's POST names the bare form version (0): judged by it, no look-up of the current version.
PLAIN = "form_version=0"
# The form of issue 28's bench: three fields staff defined and two topics, all answered and both chosen.
BENCH_FIELDS = """
from formdef.models import Field, Topic
from formdef import published
words = lambda en: {"en": en, "de": en, "fr": en, "es": en}
Field.objects.create(key="company", kind="text", max_length=80, required=True, label=words("Company"), position=1)
Field.objects.create(key="source", kind="choice", label=words("Source"), position=2, choices=[
    {"value": v, "label": words(v.title())} for v in ("press", "friend", "web")])
Field.objects.create(key="member", kind="yesno", label=words("Member"), position=3)
Topic.objects.create(key="news", name=words("News"), consent=words("Send me news"), position=1)
Topic.objects.create(key="events", name=words("Events"), consent=words("Invite me to events"), position=2)
print(published.publish("bench").pk)
"""
# What each signup of the 'fields' rounds answers, and the two topics it joins.
BENCH_ANSWERS = "f_company=Bench+Ltd&f_source=web&f_member=yes&topics=news&topics=events"


def _custom_form(bench: BenchEnv) -> str:
    """Define and publish the bench's fields; return the form fields each 'fields' signup posts."""
    printed = bench.manage("shell", "-c", BENCH_FIELDS).stdout.decode().splitlines()
    version = next(line for line in printed if line.isdigit())  # the log's lines come and go around it
    return f"form_version={int(version)}&{BENCH_ANSWERS}"


def _visit_table(bench: BenchEnv) -> None:
    """The Flask peer's counter row, made by the owner and granted to the app's role."""
    import psycopg

    with psycopg.connect(bench.pg.owner_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_visits (id int PRIMARY KEY, visits bigint NOT NULL)")
        conn.execute("INSERT INTO bench_visits VALUES (1, 0) ON CONFLICT DO NOTHING")
        conn.execute(f"GRANT SELECT, UPDATE ON bench_visits TO {bench.pg.user}")


def run(bench: BenchEnv) -> dict:
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    _visit_table(bench)
    django_app = AppServer(bench.env, workers=WORKERS, threads=THREADS)
    quiet_app = AppServer({**bench.env, **LOGGING_OFF}, workers=WORKERS, threads=THREADS)
    # The 'fields' signups go to an app of their own, so the two apps compared for the log's cost have the
    # same history (the same requests served) and differ in the log alone.
    fields_app = AppServer(bench.env, workers=WORKERS, threads=THREADS)
    bare_app = AppServer(bench.env, app="bench.bare_wsgi:application", workers=WORKERS, threads=THREADS)
    flask_app = AppServer(bench.env, app="bench.flask_counter:application", workers=WORKERS, threads=THREADS)
    apps = (django_app, quiet_app, fields_app, bare_app, flask_app)
    try:
        for app in apps:
            app.start(log=bench.root / f"app-{app.port}.log")
        print(f"{WORKERS} workers x {THREADS} threads each; django = production log, nolog = LOG_LEVEL=WARNING")
        opened = f"{CONNECTIONS} connections opened by {WRK_GROUPS} wrk processes 0.25 s apart"
        print(f"signup POSTs: {ROUNDS} alternating rounds x {SECONDS}s, {opened}")
        form = _custom_form(bench)
        print("the 'fields' rounds post to a third app (production log) with three staff-defined fields answered "
              "and two topics chosen (bench/signup.py _custom_form)")  # fmt: skip
        runs = _alternate({"django": django_app, "nolog": quiet_app, "fields": fields_app, "bare": bare_app},
                          "POST /signup/", LUA, extras={"fields": form, "django": PLAIN, "nolog": PLAIN})  # fmt: skip
        print(f"GET /: {ROUNDS} alternating rounds x {SECONDS}s, {opened}")
        home = _alternate({"django": django_app, "nolog": quiet_app, "flask": flask_app}, "GET /", None)
        for app in (quiet_app, fields_app, flask_app):  # they share our application_name: not counted below
            app.stop()
        print("100 clients hammering each signup app; peak PostgreSQL connections (pg_stat_activity)")
        django_load, django_conns = _hammer(bench.pg, django_app.url, "signup-app")
        _, bare_conns = _hammer(bench.pg, bare_app.url, "bare-wsgi")
    finally:
        for app in apps:
            app.stop()
    figures = _figures(runs, home)
    failed = sum(r["failed"] for r in runs["django"] + runs["nolog"] + runs["fields"] + home["django"] + home["nolog"])
    failed += django_load["failed"]
    bound = WORKERS * THREADS * 2
    s, h = figures["signup"], figures["home"]
    print("\n".join(bench.describe()))
    print(f"\nsignup POSTs/s (medians)  django {s['django_rps']:6.0f}  logging off {s['nolog_rps']:6.0f}  "
          f"bare WSGI+psycopg {s['bare_rps']:6.0f}")  # fmt: skip
    print(f"  ratio to the ceiling: {s['ratio']:.2f} with production logging, {s['ratio_nolog']:.2f} with logging off")
    print(f"  with three staff-defined fields and two topics: {s['fields_rps']:6.0f}/s, ratio to the ceiling "
          f"{s['ratio_fields']:.2f} ({s['ratio_fields'] / s['ratio'] - 1:+.1%} against the plain signup's; "
          f"goal within 10 %), app CPU {s['fields_cpu']:.2f} ms per signup")  # fmt: skip
    print(f"  app CPU per signup: django {s['django_cpu']:.2f} ms, logging off {s['nolog_cpu']:.2f} ms, "
          f"bare {s['bare_cpu']:.2f} ms (x{s['django_cpu'] / s['bare_cpu']:.1f})")  # fmt: skip
    print(f"GET / requests/s (medians)  django {h['django_rps']:6.0f}  logging off {h['nolog_rps']:6.0f}  "
          f"flask connect-per-request {h['flask_rps']:6.0f}")  # fmt: skip
    print(f"  ratio to flask: {h['ratio']:.2f} with production logging (goal >= 6), {h['ratio_nolog']:.2f} with "
          f"logging off")  # fmt: skip
    print(
        f"  the request log's cost: {h['log_throughput_cost']:.1%} of throughput, "
        f"{h['log_cpu_share']:.1%} of CPU per request ({h['django_cpu']:.3f} vs {h['nolog_cpu']:.3f} ms; goal <= 10 %)"
    )
    print(f"PG connections (primary + replica) with 100 clients   django {django_conns}   bare {bare_conns}   "
          f"(django's bound: {WORKERS} workers x {THREADS} threads x 2 aliases = {bound})")  # fmt: skip
    print(f"failed requests (non-2xx/3xx or socket errors) in the django runs: {failed}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return {**figures, "pg_connections_100_clients": {"django": django_conns, "bare": bare_conns, "bound": bound},
            "gunicorn": {"workers": WORKERS, "threads": THREADS}, "pg": bench.pg_settings(),
            "failed": failed, "load_average": os.getloadavg()}  # fmt: skip


def _figures(runs: dict[str, list[dict]], home: dict[str, list[dict]]) -> dict:
    signup = {f"{name}_{key}": round(_median(runs[name], key), 3) for name in runs for key in ("rps", "cpu_ms")}
    signup = {k.replace("_cpu_ms", "_cpu"): v for k, v in signup.items()}
    signup |= {
        "ratio": round(_ratio(runs, "django", "bare"), 3),
        "ratio_nolog": round(_ratio(runs, "nolog", "bare"), 3),
        "ratio_fields": round(_ratio(runs, "fields", "bare"), 3),
    }
    gets = {f"{name}_{key}": round(_median(home[name], key), 3) for name in home for key in ("rps", "cpu_ms")}
    gets = {k.replace("_cpu_ms", "_cpu"): v for k, v in gets.items()}
    gets |= {"ratio": round(_ratio(home, "django", "flask"), 3),
             "ratio_nolog": round(_ratio(home, "nolog", "flask"), 3),
             # per round: how much throughput the log costs, and its share of the CPU a request takes
             "log_throughput_cost": round(1 - _ratio(home, "django", "nolog"), 4),
             "log_cpu_share": round(1 - 1 / _ratio(home, "django", "nolog", key="cpu_ms"), 4)}  # fmt: skip
    return {"signup": signup, "home": gets}
