"""Load for the drills: people reading pages, people signing up, and the load balancer's /health probes.

Open loop: requests arrive at fixed rates whether or not earlier ones were answered, as people arrive
at a public site, so a hang shows as many slow requests, not as a client that stopped asking. Each
request runs in its own thread over its own connection (http.client) with a 15 s deadline: a hang is
measured, not waited for. Per second: PAGES_PER_S page views (GET / and GET /signup/ in turn),
SIGNUPS_PER_S signups (POST /signup/ with a unique email; when answered 302, GET /signup/thanks/ with the
cookies it set) and HEALTH_PER_S probes of /health.
Every signup comes from its own X-Forwarded-For address (a new person each time; the app trusts one hop,
as behind the ALB), so the per-IP rate limit applies without tripping. The CSRF check is passed as a
browser would after loading the form: a `csrftoken` cookie and the same 32-character secret in the form
(Django accepts the unmasked secret). Every POST answered 302 is an acknowledged signup: its email is kept.
"""

from __future__ import annotations

import http.client
import itertools
import os
import secrets
import socket
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

TIMEOUT = 15.0
PAGES_PER_S = float(os.environ.get("DRILL_PAGES_PER_S", "8"))
SIGNUPS_PER_S = float(os.environ.get("DRILL_SIGNUPS_PER_S", "8"))
HEALTH_PER_S = 4.0
GET_PAGES = ("home", "form", "thanks")  # the classes that are pages people read


@dataclass
class Record:
    started: float  # time.monotonic() when the request was sent
    kind: str  # home, form, signup, thanks, health
    seconds: float
    status: str  # "200", "302", "503", or "timeout" / "refused" / "reset" / "error"


def _fail_kind(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected):
        return "reset"
    return "error"


@dataclass
class Load:
    """Run the mix against http://host:port until stop(); keep every request's record."""

    host: str
    port: int
    tag: str  # makes emails and client addresses unique to this run
    timeout: float = TIMEOUT
    records: list[Record] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # emails whose POST was answered 302
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _streams: list[threading.Thread] = field(default_factory=list)
    _people: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- one request ----------------------------------------------------------------------------------
    def request(self, kind: str, method: str, path: str, body: str | None = None, headers: dict | None = None):
        """Send one request; record it; return (status, response headers or None)."""
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            resp.read()
            status, reply = str(resp.status), resp.headers
        except (OSError, http.client.HTTPException) as exc:
            status = _fail_kind(exc) if isinstance(exc, OSError) else "reset"
            reply = None
        finally:
            conn.close()
        with self._lock:
            self.records.append(Record(started, kind, time.monotonic() - started, status))
        return status, reply

    def signup(self) -> str:
        """One new person signs up (and reads the thank-you page when acknowledged); return the status."""
        n = next(self._people)
        email = f"drill-{self.tag}-{n}@example.com"
        secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        client = {"X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": secret,
                "full_name": f"Drill Person {n}",
                "email": email,
                "country": "GB",
                "consent": "on",
            }
        )
        status, reply = self.request(
            "signup", "POST", "/signup/", body,
            {**client, "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={secret}"},
        )  # fmt: skip
        if status == "302":
            with self._lock:
                self.acknowledged.append(email)
            cookies = SimpleCookie()
            for header in reply.get_all("Set-Cookie") or []:
                cookies.load(header)
            jar = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
            self.request("thanks", "GET", "/signup/thanks/", headers={**client, "Cookie": jar})
        return status

    # --- the mix ----------------------------------------------------------------------------------------
    def _page(self, n: int) -> None:
        client = {"X-Forwarded-For": f"10.200.{(n >> 8) & 255}.{n & 255}"}
        if n % 2:
            self.request("form", "GET", "/signup/", headers=client)
        else:
            self.request("home", "GET", "/", headers=client)

    def _arrivals(self, per_second: float, target, with_number: bool = False) -> None:
        """Start `target` in a new thread every 1/per_second seconds until stop()."""
        for n in itertools.count():
            if self._stop.wait(1 / per_second):
                return
            thread = threading.Thread(target=target, args=(n,) if with_number else (), daemon=True)
            thread.start()
            with self._lock:
                self._threads.append(thread)

    def start(self) -> None:
        streams = [(PAGES_PER_S, self._page, True), (SIGNUPS_PER_S, self.signup, False),
                   (HEALTH_PER_S, lambda: self.request("health", "GET", "/health"), False)]  # fmt: skip
        self._stop.clear()
        self._streams = [threading.Thread(target=self._arrivals, args=stream, daemon=True) for stream in streams]
        for stream in self._streams:
            stream.start()

    def stop(self) -> float:
        """Stop sending; wait for requests in flight (each is bounded by the timeout). Return seconds waited."""
        self._stop.set()
        started = time.monotonic()
        for stream in self._streams:
            stream.join()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return time.monotonic() - started
