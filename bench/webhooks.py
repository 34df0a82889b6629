"""10,000 webhook events to a flaky receiver, the worker killed with SIGKILL twice: none lost.

The receiver (this process) verifies every request with the `standardwebhooks` package, fails 20 % of them
at random with 500 and hangs 1 % past the worker's timeout (BENCH_WEBHOOK_TIMEOUT, 2 s), and records when it
first saw each webhook-id. `manage.py worker` (WEBHOOK_DELIVERY_THREADS=8, WEBHOOK_RETRY_SCALE=0.002: the
Standard Webhooks schedule 500 times faster) delivers; it is killed with SIGKILL at 30 % and at 60 % of the
ids seen and started again at once. Printed: unique ids delivered, duplicates and why, delay p50/p99 (the
event's commit to the receiver's first verified copy), and the deliveries not succeeded in the database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.admin import p95
from bench.env import BenchEnv
from devenv.servers import BASE_DIR, local_owner_env

EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "10000"))
TIMEOUT = float(os.environ.get("BENCH_WEBHOOK_TIMEOUT", "2"))
FAIL, HANG = 0.20, 0.01


class FlakyReceiver:
    def __init__(self, secret: str) -> None:
        from standardwebhooks import Webhook

        self.first_seen: dict[str, float] = {}
        self.answers: dict[str, list[int]] = {}  # per id, what we answered (0: hung past the timeout)
        self.bad_signatures = 0
        self.lock = threading.Lock()
        rng = random.Random(7)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self):  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    Webhook(secret).verify(body, dict(self.headers))
                except Exception:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    return self._answer(401)
                msg_id = self.headers["webhook-id"]
                with receiver.lock:
                    roll = rng.random()
                    code = 0 if roll < HANG else 500 if roll < HANG + FAIL else 200
                    receiver.answers.setdefault(msg_id, []).append(code)
                    if code == 200:
                        receiver.first_seen.setdefault(msg_id, time.time())
                if code == 0:
                    time.sleep(TIMEOUT + 1)  # the worker gave up; the answer goes nowhere
                    return self._answer(200)
                self._answer(code)

            def _answer(self, code: int) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _worker(bench: BenchEnv, log) -> subprocess.Popen:
    env = {**os.environ, **bench.env, "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_RETRY_SCALE": "0.002",
           "WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT), "WEBHOOK_DELIVERY_THREADS": "8"}  # fmt: skip
    return subprocess.Popen([sys.executable, "manage.py", "worker", "--interval", "0.2"], cwd=BASE_DIR, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def run(bench: BenchEnv) -> dict:
    os.environ.update({**bench.env, **local_owner_env(bench.pg, replicas=True)})
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from api.models import Delivery, Endpoint, Event

    endpoint = Endpoint.objects.create(url="http://localhost:0/hook")
    receiver = FlakyReceiver(endpoint.secret)
    Endpoint.objects.filter(pk=endpoint.pk).update(url=f"http://localhost:{receiver.port}/hook")
    Event.objects.bulk_create([Event(type=Event.CONFIRMED, signup_id=i + 1) for i in range(EVENTS)], batch_size=5000)
    committed = {f"msg_{e.pk}": e.at.timestamp() for e in Event.objects.all()}
    log = open(bench.root / "worker.log", "wb")  # noqa: SIM115 (open for the run)
    started = time.monotonic()
    worker, kills = _worker(bench, log), []
    deadline = started + float(os.environ.get("BENCH_WEBHOOK_SECONDS", "900"))
    while len(receiver.first_seen) < EVENTS and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = len(receiver.first_seen)
        if (len(kills) == 0 and seen >= 0.3 * EVENTS) or (len(kills) == 1 and seen >= 0.6 * EVENTS):
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            kills.append(seen)
            print(f"  SIGKILL the worker at {seen:,} ids delivered; started again", flush=True)
            worker = _worker(bench, log)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # the last answers' results recorded
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    statuses = dict.fromkeys(("pending", "running", "succeeded", "failed"), 0)
    for status in Delivery.objects.values_list("status", flat=True):
        statuses[status] += 1
    delays = sorted(receiver.first_seen[i] - committed[i] for i in receiver.first_seen)
    twice_ok = sum(1 for codes in receiver.answers.values() if codes.count(200) > 1)
    after_hang = sum(1 for codes in receiver.answers.values() if 0 in codes and codes.count(200) >= 1)
    requests = sum(len(codes) for codes in receiver.answers.values())
    summary = {
        "events": EVENTS, "unique_delivered": len(receiver.first_seen), "lost": EVENTS - len(receiver.first_seen),
        "requests": requests, "answered_500": sum(c.count(500) for c in receiver.answers.values()),
        "hung": sum(c.count(0) for c in receiver.answers.values()),
        "ids_answered_200_more_than_once": twice_ok, "ids_hung_then_retried": after_hang,
        "bad_signatures": receiver.bad_signatures, "kills_at_delivered": kills, "seconds": round(elapsed, 1),
        "delay_p50_s": round(delays[len(delays) // 2], 2) if delays else None,
        "delay_p99_s": round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 2) if delays else None,
        "delay_p95_s": round(p95(delays), 2) if delays else None, "deliveries": statuses,
    }  # fmt: skip
    summary["failed"] = int(summary["lost"] > 0 or summary["bad_signatures"] > 0 or len(kills) < 2)
    for key, value in summary.items():
        print(f"  {key}: {value}", flush=True)
    return summary
