"""Freeze the replica while a signed-in staff member loads the admin, the session's cached copy gone each time.

Besides the usual load, one staff browser signs in and loads the signup list in a loop from the start until a
second after the fault ends. Before each request every cached session copy is deleted from Redis (as a Redis
restart, an eviction or an open Redis breaker leave it), so each one reads the session from the database
inside the staff-only middleware. Check: 0 staff answers that are a 5xx or no answer, during the whole run.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import threading
import time
import urllib.parse
from http.cookies import SimpleCookie

from bench.env import BenchEnv
from drills.harness import HANG_FAULT, Drill, Outcome, get_pages_all_200_within
from drills.load import Load
from drills.pgfaults import postgres_freeze
from drills.report import Check, figures

USERNAME, PASSWORD = "drill-staff", "drill-staff-" + secrets.token_hex(8)
PAGE = "/admin/users/signup/"
AFTER_FAULT = 1.0  # seconds the staff browser goes on after the fault ends (the harness keeps the app 3 s more)


class StaffBrowser:
    """One signed-in staff member reading the admin in a loop on its own thread (records kind "staff")."""

    def __init__(self, env: BenchEnv) -> None:
        self.env, self.load, self.cookie = env, None, ""
        self.fault_start = self.fault_end = 0.0
        self.stop_at = float("inf")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self, port: int) -> int:
        """Sign in and start reading (the harness's `front` hook: called once the app is up); return the port."""
        self.load = Load("127.0.0.1", port, "staff")
        secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": secret, "username": USERNAME, "password": PASSWORD,
                                       "next": "/admin/"})  # fmt: skip
        status, reply = self.load.request("login", "POST", "/admin/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={secret}"})  # fmt: skip
        cookies = SimpleCookie()
        for header in (reply.get_all("Set-Cookie") if reply else None) or []:
            cookies.load(header)
        if status != "302" or "sessionid" not in cookies:
            raise RuntimeError(f"staff sign-in answered {status}, no session")
        self.cookie = f"sessionid={cookies['sessionid'].value}"
        self.thread.start()
        return port

    def _run(self) -> None:
        import redis

        cache = redis.Redis.from_url(self.env.redis.url, socket_timeout=2)
        while time.monotonic() < self.stop_at:
            try:
                keys = list(cache.scan_iter(match="*django.contrib.sessions.cache*", count=1000))
                if keys:
                    cache.delete(*keys)
            except redis.RedisError:
                pass  # the drill is about the replica; a Redis hiccup only leaves a cached copy
            self.load.request("staff", "GET", PAGE, headers={"Cookie": self.cookie})
            time.sleep(0.05)

    def stop_soon(self) -> None:
        self.stop_at = time.monotonic() + AFTER_FAULT

    def check(self, o: Outcome) -> Check:
        self.thread.join(AFTER_FAULT + 20)
        records = self.load.records if self.load else []
        staff = [r for r in records if r.kind == "staff"]
        during = [r for r in staff if o.fault_start <= r.started < o.fault_end]
        bad = [r for r in staff if r.status != "200"]  # a 5xx, no answer, or a 302 (signed out) all count
        five = sum(r.status[:1] == "5" for r in staff)
        f, slowest = figures(during), max((r.seconds for r in staff), default=0)
        return Check("staff admin pages without a cached session: all 200, 0 x 5xx", bool(during) and not bad,
                     f"{len(staff)} sent, {len(during)} during the fault {f['statuses']}; {five} x 5xx, "
                     f"{len(bad)} not 200; during the fault p50 {f['p50_ms']:.0f} ms, max {slowest:.2f} s")  # fmt: skip


def drill(env: BenchEnv) -> Drill:
    code = ("from django.contrib.auth.models import User; "
            f"User.objects.filter(username={USERNAME!r}).delete(); "
            f"User.objects.create_superuser({USERNAME!r}, '', {PASSWORD!r})")  # fmt: skip
    env.manage("shell", "-c", code)
    env.pg.wait_for_replica()
    browser = StaffBrowser(env)
    fault = postgres_freeze(env, env.pg.replica, "replica")

    def restore() -> None:
        fault.restore()
        browser.stop_soon()

    return Drill(
        "freeze_replica_staff",
        dataclasses.replace(fault, restore=restore),
        fault_seconds=HANG_FAULT,
        reads_replica=True,
        checks=[browser.check, get_pages_all_200_within(10)],
        front=lambda app: browser.start(app.port),
    )
