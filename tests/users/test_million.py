"""At a million signups with mixed statuses: search, the default export and the XLSX export, measured.

Warm HTTP requests of the changelist through gunicorn (the test session's app server): p95 for a common
surname, a fragment of one address and an exact address. The default CSV export holds exactly the people SQL
counts as contactable; the XLSX export's speed and the app's peak memory are printed. Figures: `pytest -s`.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
import urllib.request

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.helpers import Browser, login_staff

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

ROWS = 1_000_000
ROUNDS = 60
# Mixed statuses, set with SQL as the app would leave them (erasure's values for the erased rows).
STATUSES_SQL = [
    "UPDATE users_signup SET confirmed_at = created_at + interval '5 minutes' WHERE consent AND id % 3 <> 0",
    "UPDATE users_signup SET withdrawn_at = created_at + interval '9 days', consent = false WHERE id % 41 = 1",
    "UPDATE users_signup SET email_blocked_at = created_at + interval '1 day', email_blocked_reason = 'bounce'"
    " WHERE id % 97 = 2",
    "UPDATE users_signup SET email = 'erased-' || id || '@invalid', full_name = '', phone = '', country = '',"
    " consent = false, consent_at = NULL, consent_version = '', ip_address = NULL, user_agent = '',"
    " withdrawn_at = COALESCE(withdrawn_at, now()) WHERE id % 211 = 3",
]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@pytest.fixture
def million(pg):
    started = time.monotonic()
    call_command("seed_signups", "--count", str(ROWS), "--seed", "7", "--batch", "10000", verbosity=0)
    # Set-up, not the app: minutes of UPDATE and a VACUUM, on a connection of its own without the app's deadlines.
    with psycopg.connect(pg.owner_url, autocommit=True) as owner:
        for sql in STATUSES_SQL:
            owner.execute(sql)
        owner.execute("VACUUM ANALYZE users_signup")
    pg.wait_for_replica(timeout=300)
    print(f"\nseeded {ROWS:,} rows with mixed statuses in {time.monotonic() - started:.0f} s")


def _staff_browser(url: str) -> Browser:
    client = login_staff("big-list", "view_signup", "export_signup", client=Client())
    browser = Browser(url)
    browser.headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return browser


def _timed(browser: Browser, query: str) -> list[float]:
    path = f"/admin/users/signup/?q={urllib.parse.quote(query)}"
    for _ in range(5):  # warm: templates, connections, the index pages in memory
        assert browser.get(path).status == 200
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        reply = browser.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert reply.status == 200
    return times


def test_search_export_and_xlsx_at_a_million_rows(million, app_server, pg):
    from users.models import Signup

    browser = _staff_browser(app_server.url)
    surname, fragment = "lovelace", None
    address = Signup.objects.using("default").filter(status="confirmed").values_list("email", flat=True)[12345]
    fragment = address.split("@")[0][-12:]  # "hopper.4242"-like: part of one address
    figures = {}
    for name, query in (("surname", surname), ("email_fragment", fragment), ("exact_address", address)):
        times = _timed(browser, query)
        figures[name] = (p95(times), statistics.median(times))
    _where_the_time_goes({"surname": surname, "email_fragment": fragment, "exact_address": address})
    exact_page = browser.get(f"/admin/users/signup/?q={urllib.parse.quote(address)}").body
    assert exact_page.count('<td class="field-email">') == 1 and address in exact_page
    for name, (p95_ms, median_ms) in figures.items():
        print(f"search {name}: p95 {p95_ms:.1f} ms, median {median_ms:.1f} ms ({ROUNDS} warm requests)")

    contactable = (
        Signup.objects.using("default")
        .filter(confirmed_at__isnull=False, consent=True, withdrawn_at__isnull=True, email_blocked_at__isnull=True)
        .exclude(email__endswith="@invalid")
    )
    expected = contactable.count()
    csv_rows, csv_seconds, _rss = _export(browser, app_server, "csv")
    print(f"default CSV export: {csv_rows:,} rows in {csv_seconds:.1f} s; contactable by SQL: {expected:,}")
    assert csv_rows == expected
    xlsx_bytes, xlsx_seconds, rss = _export(browser, app_server, "xlsx")
    print(f"XLSX export of the same {expected:,} rows: {xlsx_bytes / 1e6:.1f} MB in {xlsx_seconds:.1f} s "
          f"({expected / xlsx_seconds:,.0f} rows/s); gunicorn worker peak RSS {rss:.0f} MB")  # fmt: skip

    assert figures["surname"][0] <= 50 * 2 and figures["email_fragment"][0] <= 50 * 2  # loaded machine: 2x room
    assert figures["exact_address"][0] <= 20 * 2


def _where_the_time_goes(queries: dict[str, str]) -> None:
    """Print each SQL statement's time for one in-process, warm request of each search (on the replica)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    client = login_staff("diagnose", "view_signup", client=Client())
    for name, query in queries.items():
        client.get("/admin/users/signup/", {"q": query})  # warm
        with (
            CaptureQueriesContext(connections["replica1"]) as replica,
            CaptureQueriesContext(connections["default"]) as primary,
        ):
            started = time.perf_counter()
            client.get("/admin/users/signup/", {"q": query})
            total = (time.perf_counter() - started) * 1000
        queries = [q for q in (*replica.captured_queries, *primary.captured_queries) if "users_signup" in q["sql"]]
        timed = "; ".join(f"{float(q['time']) * 1000:.1f} ms {q['sql'][:70]}" for q in queries)
        print(f"{name}: {total:.0f} ms in-process; SQL: {timed}")


def _export(browser: Browser, app_server, fmt: str) -> tuple[int, float, float]:
    """POST the default export; return (CSV data rows or XLSX bytes, seconds, the workers' peak RSS in MB)."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/admin/users/signup/").body)
    cookie = browser.headers["Cookie"] + "".join(f"; {c.name}={c.value}" for c in browser.jar)
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "format": fmt}).encode()
    request = urllib.request.Request(app_server.url + "/admin/users/signup/export/", data=body,
                                     headers={"Cookie": cookie})  # fmt: skip
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _children_rss_mb(app_server))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    size = lines = 0
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            assert response.status == 200
            while chunk := response.read(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    return (lines - 1 if fmt == "csv" else size), seconds, peak[0]


def _children_rss_mb(app_server) -> float:
    """The largest resident memory among the gunicorn master's workers, in MB."""
    from pathlib import Path

    pid = app_server.proc.pid
    best = 0.0
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except FileNotFoundError:
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            best = max(best, int(found.group(1)) / 1024 if found else 0)
    return best
