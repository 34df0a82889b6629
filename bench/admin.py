"""Staff admin at a million signups: our changelist against a stock ModelAdmin, search, streaming CSV export.

Seeds BENCH_ADMIN_ROWS (default 1,000,000) signups with `manage.py seed_signups`, then VACUUM ANALYZE (what
autovacuum does to a real table). Pages are requested in-process with Django's test client, our admin
and a stock ModelAdmin of the same model (bench/admin_urls.py) alternating request by request. The CSV
export of every row runs through gunicorn (1 worker) while the worker's resident memory is sampled.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
import urllib.request

import psycopg

from bench.env import BenchEnv
from devenv.servers import AppServer, local_owner_env
from tests.helpers import sample_replicas

ROWS = int(os.environ.get("BENCH_ADMIN_ROWS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_ADMIN_REQUESTS", "100"))  # per page kind and admin: p95 of 100, not of 40
PAGES = {
    "changelist": {},
    "filtered": {"country__exact": "GB", "consent__exact": "1"},
    "search": {"q": "lovelace"},  # a surname: about 1 row in 50
    "search_email": {"q": "grace.hopper.4242"},  # part of one address
}
GOALS = {"changelist_p95_ms": 200, "ratio": 10, "export_peak_rss_mb": 100}


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _setup_django(bench: BenchEnv):
    """Configure Django in this process on the bench's services; return a client logged in as staff."""
    os.environ.update({**bench.env, **local_owner_env(bench.pg, replicas=True)})  # a harness: VACUUM, staff user
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_user("bench-staff", password="bench-" + "p" * 20, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def _pages(client) -> dict:
    """Time every page kind on both admins, alternating; return latencies in ms and any failures."""
    from django.test.utils import override_settings

    times = {(kind, site): [] for kind in PAGES for site in ("ours", "stock")}
    failures = 0
    from django.conf import settings

    # The stock site is a staff page too: the staff-only middleware (sessions, auth) must run for it.
    staff = [*settings.STAFF_PATHS, "/stock/"]
    with override_settings(ROOT_URLCONF="bench.admin_urls", ALLOWED_HOSTS=["testserver"], STAFF_PATHS=staff):
        for params in PAGES.values():  # warm-up: templates, connections, caches
            for site in ("admin", "stock"):
                client.get(f"/{site}/users/signup/", params)
        for i in range(ROUNDS):
            sample_replicas()
            for kind, params in PAGES.items():
                order = ("ours", "stock") if i % 2 == 0 else ("stock", "ours")
                for site in order:
                    prefix = "admin" if site == "ours" else "stock"
                    started = time.perf_counter()
                    response = client.get(f"/{prefix}/users/signup/", params)
                    times[kind, site].append((time.perf_counter() - started) * 1000)
                    failures += response.status_code != 200
    return {"times": times, "failures": failures}


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{master}/task/{master}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _export(bench: BenchEnv, cookie: str) -> dict:
    """Download the whole list as CSV through gunicorn; sample the worker's memory meanwhile."""
    app = AppServer(bench.env, workers=1, threads=4)
    app.start(log=bench.root / "admin-app.log")
    try:
        worker = _worker_pid(app.proc.pid)
        headers = {"Cookie": cookie}
        list_page = urllib.request.Request(app.url + "/admin/users/signup/", headers=headers)
        with urllib.request.urlopen(list_page, timeout=30) as page:  # warm-up; lets the replica monitor sample
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
            csrf_cookie = re.search(r"csrftoken=([^;]+)", "; ".join(page.headers.get_all("Set-Cookie") or [])).group(1)
        headers["Cookie"] += f"; csrftoken={csrf_cookie}"  # the export is the list's POST form
        time.sleep(2.5)
        baseline = _rss_mb(worker)
        peak, stop = [baseline], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(_rss_mb(worker))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        rows, started = -1, time.perf_counter()  # the header line is not a row
        request = urllib.request.Request(app.url + "/admin/users/signup/export-csv/", headers=headers,
                                         data=f"csrfmiddlewaretoken={token}".encode())  # fmt: skip
        with urllib.request.urlopen(request, timeout=600) as response:
            first_byte = None
            while chunk := response.read(64 * 1024):
                first_byte = first_byte or time.perf_counter() - started
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        return {
            "rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "first_byte_ms": round(first_byte * 1000), "baseline_rss_mb": round(baseline, 1),
            "peak_rss_mb": round(max(*peak, _rss_mb(worker, "VmHWM")), 1),
        }  # fmt: skip
    finally:
        app.stop()


def run(bench: BenchEnv) -> dict:
    # Exactly ROWS rows: without the other benchmarks' signups, which would all sit at the newest end.
    with psycopg.connect(bench.pg.owner_url, autocommit=True) as connection:
        connection.execute("TRUNCATE users_signup CASCADE")  # its consent ledger and emails too
    print(f"seeding {ROWS:,} signups with manage.py seed_signups ...", flush=True)
    started = time.monotonic()
    bench.manage(
        "seed_signups", "--count", str(ROWS), "--batch", "10000", "--seed", "1", extra_env=local_owner_env(bench.pg)
    )  # ANALYZE; batches each well inside the 5 s statement timeout
    seed_seconds = time.monotonic() - started
    client = _setup_django(bench)
    from django.db import connections

    from project.db import bounds

    with bounds.bounded(None), connections["default"].cursor() as cursor:  # maintenance: as long as it takes
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("VACUUM ANALYZE users_signup")
        cursor.execute("RESET statement_timeout")
    bench.pg.wait_for_replica(timeout=300)
    print(f"  {ROWS / seed_seconds:,.0f} rows/s; pages: {ROUNDS} rounds, ours and stock alternating", flush=True)
    pages = _pages(client)
    summary: dict = {"rows": ROWS, "seed_rows_per_s": round(ROWS / seed_seconds), "pages": {}}
    for kind in PAGES:
        ours, stock = pages["times"][kind, "ours"], pages["times"][kind, "stock"]
        figures = {
            "ours_p95_ms": round(p95(ours), 1), "stock_p95_ms": round(p95(stock), 1),
            "ours_median_ms": round(statistics.median(ours), 1), "stock_median_ms": round(statistics.median(stock), 1),
        }  # fmt: skip
        figures["ratio_p95"] = round(figures["stock_p95_ms"] / figures["ours_p95_ms"], 1)
        summary["pages"][kind] = figures
        print(f"  {kind:13s} p95 ours {figures['ours_p95_ms']:7.1f} ms   stock {figures['stock_p95_ms']:7.1f} ms   "
              f"x{figures['ratio_p95']:<5}  (medians: ours {figures['ours_median_ms']}, "
              f"stock {figures['stock_median_ms']} ms)")  # fmt: skip
    print("CSV export of every row through gunicorn (1 worker), worker memory sampled every 50 ms", flush=True)
    from django.conf import settings

    summary["export"] = _export(
        bench, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    )
    e = summary["export"]
    print(f"  {e['rows']:,} rows in {e['seconds']} s = {e['rows_per_s']:,} rows/s, first byte {e['first_byte_ms']} ms,"
          f" worker RSS {e['baseline_rss_mb']} MB before, peak {e['peak_rss_mb']} MB")  # fmt: skip
    main = summary["pages"]["changelist"]
    summary["goals_met"] = {
        "changelist_p95_under_200ms": main["ours_p95_ms"] <= GOALS["changelist_p95_ms"],
        "ten_times_faster_than_stock": main["ratio_p95"] >= GOALS["ratio"],
        "export_peak_rss_under_100mb": e["peak_rss_mb"] <= GOALS["export_peak_rss_mb"],
    }
    print(f"\nchangelist p95 at {ROWS:,} rows: ours {main['ours_p95_ms']} ms vs stock {main['stock_p95_ms']} ms "
          f"(x{main['ratio_p95']}); goals met: {summary['goals_met']}")  # fmt: skip
    summary["failed"] = pages["failures"] + (e["rows"] < ROWS)
    return summary
