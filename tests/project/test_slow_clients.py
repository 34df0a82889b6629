"""Slow clients: 30 connections trickling a request body, with and without the nginx sidecar in front.

gunicorn's gthread worker hands a connection to a thread as soon as it is readable, and the thread then
blocks reading the body: 30 slow clients hold every thread of 2 workers x 4 threads. nginx
(deploy/nginx.conf) reads the whole request first, so gunicorn only ever sees complete requests.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from devenv.servers import AppServer, MissingBinary, ProxyServer
from tests.conftest import CI, SERVICES
from tests.helpers import Browser

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]
SLOW_CLIENTS = 30
HOLD_SECONDS = 9.0
HEAD = (
    b"POST /signup/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\nfull_name="
)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup):
    """The app as on a 0.5 vCPU task (2 workers x 4 threads), trusting one X-Forwarded-For hop as behind the ALB."""
    env = {**SERVICES.environ(), "SIGNUP_RATE_LIMIT": "1000/600", "TRUSTED_PROXY_COUNT": "1"}
    app = AppServer(env=env, workers=2, threads=4)
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def proxy(gunicorn):
    server = _proxy(gunicorn.port)
    server.start()
    yield server
    server.stop()


def _proxy(upstream_port: int) -> ProxyServer:
    try:
        return ProxyServer(upstream_port=upstream_port)
    except MissingBinary as exc:
        if CI:
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))


class SlowClients:
    """Connections that send their headers, then one byte of a 1,000-byte body every half second."""

    def __init__(self, port: int, count: int = SLOW_CLIENTS) -> None:
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._trickle, daemon=True) for _ in range(count)]

    def _trickle(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(HEAD)
            deadline = time.monotonic() + HOLD_SECONDS
            while not self.stop.is_set() and time.monotonic() < deadline:
                sock.sendall(b"a")
                self.stop.wait(0.5)
            sock.close()
        except OSError:
            pass  # dropped by the server: that is allowed

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(2.0)  # let them all connect and start trickling (1 s was once too short on a loaded machine)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def _timed_health(url: str, timeout: float) -> float | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            assert resp.status == 200
    except (urllib.error.URLError, TimeoutError, OSError):
        return None
    return time.perf_counter() - started


def _worst_health(url: str, probes: int = 3) -> float | None:
    """Probe /health like the ALB, a few times in a row (2 s timeout each); return the slowest, None if one failed."""
    times = [_timed_health(url, timeout=2.0) for _ in range(probes)]
    return None if None in times else max(times)


def _timed_signup(url: str, n: int, timeout: float) -> float | None:
    browser = Browser(url)
    started = time.perf_counter()
    try:
        token = browser.csrf_token()
        reply = browser.post_form(
            "/signup/", {"consent": "on", "full_name": f"Slow Test {n}", "email": f"slow{n}@example.com"}, token
        )
    except (urllib.error.URLError, TimeoutError, OSError):
        return None
    took = time.perf_counter() - started
    return took if reply.status == 200 and took <= timeout else None


def _measure(url: str, port: int, n: int, app: AppServer | None = None) -> tuple[float | None, float | None]:
    """Time /health and a whole signup, both started while the slow clients trickle.

    `app`: gunicorn reached directly. The 30 connections arrive in a burst, and a burst can land on one worker
    (`AppServer.connections_per_worker`), leaving the other's threads free: the slow clients are then sent
    again (5 bursts at most) until each worker holds at least as many as it has threads.
    """
    for attempt in range(1, 6):
        with SlowClients(port):
            split = app.connections_per_worker() if app is not None else None
            if split is None or min(split) >= app.threads or attempt == 5:
                if split is not None:
                    print(f"\nslow connections per worker (direct): {split}, burst {attempt}")
                return _probe(url, n)
    raise AssertionError("unreachable: the fifth burst is measured")


def _probe(url: str, n: int) -> tuple[float | None, float | None]:
    results: dict = {}
    jobs = [threading.Thread(target=lambda: results.update(health=_worst_health(url))),
            threading.Thread(target=lambda: results.update(signup=_timed_signup(url, n, timeout=6.0)))]  # fmt: skip
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    return results["health"], results["signup"]


def _fmt(seconds: float | None) -> str:
    return "no answer" if seconds is None else f"{seconds * 1000:.0f} ms"


def test_thirty_slow_clients_starve_gunicorn_alone_but_not_behind_nginx(gunicorn, proxy):
    direct_health, direct_signup = _measure(gunicorn.url, gunicorn.port, 1, app=gunicorn)
    proxied_health, proxied_signup = _measure(proxy.url, proxy.port, 2)
    print(f"\n{SLOW_CLIENTS} slow clients: /health (slowest of 3) direct {_fmt(direct_health)}, "
          f"via nginx {_fmt(proxied_health)}; signup (GET form + POST) direct {_fmt(direct_signup)}, "
          f"via nginx {_fmt(proxied_signup)}")  # fmt: skip
    assert proxied_health is not None and proxied_health < 2.0
    assert proxied_signup is not None and proxied_signup < 5.0
    # Without the proxy every thread waits on a slow body: both miss their marks.
    assert direct_health is None or direct_health > 2.0
    assert direct_signup is None or direct_signup > 5.0


def test_the_proxy_passes_x_forwarded_for_through_unchanged(proxy, gunicorn):
    """The app trusts one hop (the ALB's); nginx must not add the loopback address as another."""
    from users.models import Signup

    browser = Browser(proxy.url, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    token = browser.csrf_token()
    reply = browser.post_form(
        "/signup/", {"consent": "on", "full_name": "Hop Count", "email": "hop@example.com"}, token
    )
    assert reply.status == 200
    # The ALB's entry (the rightmost) is the client: nginx added no hop of its own.
    assert Signup.objects.using("default").get(email="hop@example.com").ip_address == "203.0.113.9"
    access_log = (proxy.root / "access.log").read_text()
    assert "198.51.100.7" not in access_log and "203.0.113.9" not in access_log and "/signup/" not in access_log


def test_a_body_over_the_limit_is_refused_by_nginx_with_413(proxy):
    request = urllib.request.Request(f"{proxy.url}/signup/", data=b"a" * (1024 * 1024 + 1), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 413


def test_gunicorn_down_behind_nginx_is_a_503_with_retry_after_not_a_bare_502(django_db_setup):
    proxy = _proxy(1)  # nothing listens there
    proxy.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{proxy.url}/signup/", timeout=10)
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "30"
        assert "Nothing was stored" in err.value.read().decode()
    finally:
        proxy.stop()
