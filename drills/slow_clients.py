"""30 slow clients: each sends a signup POST's headers and part of its body, then a byte a second.

Through the buffering nginx proxy (devenv.servers.ProxyServer, branch `edge`) when it exists, as in the
ECS task; otherwise straight at gunicorn, and the figures say so. The load and the /health probes go
the same way as the slow clients.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
from collections import Counter

import devenv.servers
from bench.env import BenchEnv
from devenv.servers import AppServer
from drills.harness import Drill, Fault, FaultNotObserved, answered_within

CLIENTS = 30
BODY_LENGTH = 65536  # declared; only a trickle of it is ever sent
# A valid CSRF pair, so the app goes on to read the body (without the cookie it answers 403 at once).
SECRET = "SlowSlowSlowSlowSlowSlowSlowSlow"
PARTIAL = f"csrfmiddlewaretoken={SECRET}&full_name=Slow".encode()


class SlowClients:
    def __init__(self) -> None:
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.sent = 0
        self._stop = threading.Event()

    def open(self) -> None:
        head = (f"POST /signup/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {BODY_LENGTH}\r\nCookie: csrftoken={SECRET}\r\n")  # fmt: skip
        self._stop.clear()
        for n in range(CLIENTS):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(f"{head}X-Forwarded-For: 10.250.0.{n}\r\n\r\n".encode() + PARTIAL)
            self.sockets.append(sock)
        self.sent = len(PARTIAL)
        threading.Thread(target=self._trickle, daemon=True).start()

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")
            self.sent += 1

    def states(self) -> Counter:
        """How many connections the server still waits on ("held"), has answered, or has closed."""
        seen: Counter = Counter()
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                seen["answered" if sock.recv(1, socket.MSG_PEEK) else "closed"] += 1
            except BlockingIOError:
                seen["held"] += 1  # nothing to read: the server still waits for the rest of the body
            except OSError:
                seen["closed"] += 1
            finally:
                sock.setblocking(True)
        return seen

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def _start_proxy(env: BenchEnv, app: AppServer):
    """Start devenv.servers.ProxyServer in front of `app`, or return None when this tree has none."""
    proxy_class = getattr(devenv.servers, "ProxyServer", None)
    if proxy_class is None:
        return None
    # Branch `edge` owns its signature: pass what it asks for among the obvious names.
    offer = {"root": env.root / "proxy", "upstream_port": app.port, "app_port": app.port, "backend_port": app.port,
             "upstream": app.url, "app": app}  # fmt: skip
    wanted = inspect.signature(proxy_class).parameters
    proxy = proxy_class(**{name: value for name, value in offer.items() if name in wanted})
    proxy.start()
    return proxy


def drill(env: BenchEnv) -> Drill:
    slow = SlowClients()
    proxies: list = []
    via = ["gunicorn directly (no ProxyServer in devenv.servers)"]

    def front(app: AppServer) -> int:
        proxy = _start_proxy(env, app)
        if proxy is None:
            slow.port = app.port
        else:
            proxies.append(proxy)
            slow.port, via[0] = proxy.port, f"the nginx ProxyServer on :{proxy.port}"
        return slow.port

    def verify() -> str:
        seen = slow.states()
        if not slow.sockets:
            raise FaultNotObserved("no slow connection could be opened")
        return (f"{len(slow.sockets)} connections opened through {via[0]}; after 1 s {dict(seen)}; each sent "
                f"{slow.sent} of {BODY_LENGTH} body bytes")  # fmt: skip

    def cleanup() -> None:
        for proxy in proxies:
            proxy.stop()

    fault = Fault(f"{CLIENTS} clients sending a partial POST body (a byte a second)", slow.open, verify, slow.close)
    checks = [answered_within("health", "200", 2.0), answered_within("signup", "302", 5.0)]
    return Drill("slow_clients", fault, checks=checks, front=front, cleanup=[cleanup])
