"""/api/v1/signups at a million rows: p95 per page of 100, from the first page to pages deep in the table.

Seeds BENCH_API_ROWS (default 1,000,000) signups with `manage.py seed_signups`, then VACUUM ANALYZE. The
cursor of each depth (row 0, 10k, 100k, 500k, 990k in list order) is read once from the table; each page is
then requested in-process with Django's test client, with a real API key (its lookup, rate-limit hit and audit
row included), BENCH_API_REQUESTS times per depth, depths interleaved. Filtered pages (confirmed, contactable,
language) are timed from the first page.
"""

from __future__ import annotations

import base64
import os
import statistics
import time

import psycopg

from bench.admin import p95
from bench.env import BenchEnv
from devenv.servers import local_owner_env

ROWS = int(os.environ.get("BENCH_API_ROWS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_API_REQUESTS", "100"))
DEPTHS = [0, 10_000, 100_000, 500_000, 990_000]
FILTERS = {"confirmed": {"confirmed": "true"}, "contactable": {"contactable": "true"}, "french": {"language": "fr"}}
GOAL_P95_MS = 20.0


def _setup(bench: BenchEnv):
    os.environ.update({**bench.env, **local_owner_env(bench.pg, replicas=True)})
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    from api import keys
    from api.models import ApiKey

    user = User.objects.create_user("bench-api", password="bench-" + "p" * 20, is_staff=True, is_superuser=True)
    token, prefix, hashed = keys.generate()
    ApiKey.objects.create(name="bench", prefix=prefix, hashed=hashed, scopes=["signups:read"], created_by=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _cursor_at(cursor, depth: int) -> str | None:
    if depth == 0:
        return None
    cursor.execute("SELECT created_at, id FROM users_signup ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                   [depth - 1])  # fmt: skip
    at, pk = cursor.fetchone()
    return base64.urlsafe_b64encode(f"{int(at.timestamp() * 1_000_000)}.{pk}".encode()).decode()


def run(bench: BenchEnv) -> dict:
    from django.test.utils import override_settings

    with psycopg.connect(bench.pg.owner_url, autocommit=True) as connection:
        connection.execute("TRUNCATE users_signup CASCADE")
    print(f"seeding {ROWS:,} signups with manage.py seed_signups ...", flush=True)
    bench.manage("seed_signups", "--count", str(ROWS), "--seed", "1", extra_env=local_owner_env(bench.pg))
    client = _setup(bench)
    from django.db import connections

    from project.db import bounds

    with bounds.bounded(None), connections["default"].cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("VACUUM ANALYZE users_signup")
        cursor.execute("UPDATE users_signup SET language = 'fr' WHERE id % 7 = 0")  # seeded rows are all 'en'
        cursor.execute("ANALYZE users_signup")
        cursors = {depth: _cursor_at(cursor, min(depth, ROWS - 101)) for depth in DEPTHS}
        cursor.execute("RESET statement_timeout")
    bench.pg.wait_for_replica(timeout=300)
    kinds = {f"depth_{d}": {"limit": 100, **({"after": c} if c else {})} for d, c in cursors.items()}
    kinds.update({name: {"limit": 100, **params} for name, params in FILTERS.items()})
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    failures = 0
    with override_settings(ALLOWED_HOSTS=["testserver"], API_RATE_LIMIT=(10**9, 60)):
        for params in kinds.values():  # warm-up
            client.get("/api/v1/signups", params)
        for _ in range(ROUNDS):
            for kind, params in kinds.items():
                started = time.perf_counter()
                response = client.get("/api/v1/signups", params)
                times[kind].append((time.perf_counter() - started) * 1000)
                failures += response.status_code != 200
    summary: dict = {"rows": ROWS, "pages": {}}
    for kind, samples in times.items():
        summary["pages"][kind] = {"p95_ms": round(p95(samples), 1), "median_ms": round(statistics.median(samples), 1)}
        print(f"  {kind:14s} p95 {p95(samples):6.1f} ms   median {statistics.median(samples):6.1f} ms", flush=True)
    worst = max(v["p95_ms"] for k, v in summary["pages"].items() if k.startswith("depth_"))
    summary["goals_met"] = {"list_p95_under_20ms_at_every_depth": worst <= GOAL_P95_MS}
    summary["failed"] = failures
    print(f"\nAPI list at {ROWS:,} rows: worst p95 over depths {worst} ms (goal {GOAL_P95_MS}); failures {failures}")
    return summary
