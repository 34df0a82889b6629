"""Load for the drills: people reading pages, people signing up, and the load balancer's /health probes.

Threads with http.client, one connection per request and a 15 s deadline per request (a hang is measured,
not waited for). Each request class runs in its own threads so one hung class cannot stop the others
being sampled:
- readers: GET / and GET /signup/ in turn;
- signers: POST /signup/ with a unique email, then GET /signup/thanks/ with the cookies that POST set;
- health: GET /health every HEALTH_INTERVAL seconds, each probe in its own short thread.
Every signup comes from its own X-Forwarded-For address (a new person each time; the app trusts one hop,
as behind the ALB), so the per-IP rate limit applies without tripping. The CSRF check is passed as a
browser would after loading the form: a `csrftoken` cookie and the same 32-character secret in the form
(Django accepts the unmasked secret). Every POST answered 302 is an acknowledged signup: its email is kept.
"""

from __future__ import annotations

import http.client
import itertools
import secrets
import socket
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

TIMEOUT = 15.0
HEALTH_INTERVAL = 0.25
READERS, SIGNERS = 3, 3
THINK = 0.05  # seconds each reader/signer waits between requests
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
    records: list[Record] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # emails whose POST was answered 302
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _people: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- one request ----------------------------------------------------------------------------------
    def request(self, kind: str, method: str, path: str, body: str | None = None, headers: dict | None = None):
        """Send one request; record it; return (status, response headers or None)."""
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
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
            {"csrfmiddlewaretoken": secret, "full_name": f"Drill Person {n}", "email": email, "country": "GB"}
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
    def _reader(self, n: int) -> None:
        client = {"X-Forwarded-For": f"10.200.{n}.1"}
        for i in itertools.count():
            if self._stop.is_set():
                return
            if i % 2:
                self.request("form", "GET", "/signup/", headers=client)
            else:
                self.request("home", "GET", "/", headers=client)
            time.sleep(THINK)

    def _signer(self) -> None:
        while not self._stop.is_set():
            self.signup()
            time.sleep(THINK)

    def _health(self) -> None:
        while not self._stop.wait(HEALTH_INTERVAL):
            probe = threading.Thread(target=self.request, args=("health", "GET", "/health"), daemon=True)
            probe.start()
            self._threads.append(probe)

    def start(self) -> None:
        targets = [(self._reader, (n,)) for n in range(READERS)] + [(self._signer, ())] * SIGNERS
        targets.append((self._health, ()))
        for target, args in targets:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> float:
        """Stop sending; wait for requests in flight (each is bounded by TIMEOUT). Return seconds waited."""
        self._stop.set()
        started = time.monotonic()
        for thread in self._threads:  # by index: a probe started meanwhile is joined too
            thread.join(TIMEOUT + THINK + 5)
        return time.monotonic() - started
