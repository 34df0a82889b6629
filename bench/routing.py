"""Read-heavy mix (90 % reads, 10 % signups; each client re-reads what it wrote) against our router and,
in the same run and under the same replica lag, a 15-second cookie pin (django-multidb-router's strategy).

Lag is real: WAL replay on the replica is paused for PAUSE seconds at a time. For every read the bench
knows whether the replica had already replayed that client's last write (it samples the replica's replay
position every 20 ms and the primary's position after each signup): such a read *can* go to a replica.
Figures: share of those reads served by the replica, and stale own-reads (a client not seeing its own
signup).
"""

from __future__ import annotations

import bisect
import os
import random
import threading
import time
import urllib.error
from collections import Counter

from bench.env import BenchEnv
from devenv.servers import AppServer
from project.db.monitor import lsn_to_int
from tests.helpers import Browser, ready_detail

SECONDS = float(os.environ.get("BENCH_ROUTING_SECONDS", "50"))
PAUSE = float(os.environ.get("BENCH_ROUTING_PAUSE", "20"))
CLIENTS = int(os.environ.get("BENCH_ROUTING_CLIENTS", "24"))
THINK = float(os.environ.get("BENCH_ROUTING_THINK", "1.5"))  # mean seconds a person pauses between pages


class ReplayTracker:
    """Sample the replica's replay position; answer "had it replayed LSN by time t?"."""

    def __init__(self, bench: BenchEnv) -> None:
        self.pg, self.samples, self.stop = bench.pg, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            (lsn,) = self.pg.admin_sql("SELECT pg_last_wal_replay_lsn()::text", server=self.pg.replica)[0]
            self.samples.append((time.monotonic(), lsn_to_int(lsn)))
            time.sleep(0.02)

    def replayed_by(self, t: float) -> int:
        """The first sample taken after t: an upper bound, so "could use a replica" is never undercounted
        and the share served is a lower bound."""
        i = bisect.bisect_left(self.samples, (t, 0))
        return self.samples[min(i, len(self.samples) - 1)][1] if self.samples else 0


def _client(app: AppServer, n: int, tag: str, deadline: float, pg, log: list) -> None:
    address = f"10.{1 + (tag == 'pin15s')}.{n // 256}.{n % 256}"  # each person their own IP, through the ALB
    browser = Browser(app.url, headers={"X-Forwarded-For": address}, follow_redirects=False)
    wrote_lsn, expected, k = 0, None, 0
    while time.monotonic() < deadline:
        try:
            if expected is None or random.random() < 0.10:
                k += 1
                email = f"{tag}-{n}-{k}-{random.getrandbits(32)}@example.com"
                posted = browser.post_form(
                    "/signup/", {"consent": "on", "full_name": f"{tag} client {n} signup {k}", "email": email}
                )
                if posted.status != 302:  # not saved: a failure, not a stale read
                    log.append((time.monotonic(), wrote_lsn, False, f"POST {posted.status}"))
                    continue
                expected = f"{tag} client {n} signup {k}"
                # the primary's position right after this client's commit, from the signed cookie's value
                # ("timeline/position:timestamp:signature", quoted for its "/": project/db/middleware.py)
                cookie = next(c.value for c in browser.jar if c.name == "db_position")
                wrote_lsn = int(cookie.strip('"').split(":")[0].rpartition("/")[2])
            # 90 % of pages re-read this client's signup; the first one is the redirect right after the POST
            started = time.monotonic()
            reply = browser.get("/signup/thanks/")
            log.append((started, wrote_lsn, f"Thank you, {expected}</h1>" in reply.body, reply.status))
        except (urllib.error.URLError, OSError) as exc:
            log.append((time.monotonic(), wrote_lsn, False, repr(exc)))
        time.sleep(random.expovariate(1 / THINK))


def _lag_injector(pg, deadline: float) -> None:
    """Alternate: replay for a few seconds, pause for PAUSE seconds."""
    while time.monotonic() < deadline:
        time.sleep(min(4.0, max(deadline - time.monotonic(), 0)))
        if time.monotonic() + 1 >= deadline:
            break
        pg.pause_replay()
        time.sleep(min(PAUSE, max(deadline - time.monotonic() - 1, 0)))
        pg.resume_replay()


def _replica_reads(app: AppServer) -> int:
    return ready_detail(app.url)["routing"]["counters"]["reads"].get("replica1", 0)


def run(bench: BenchEnv) -> dict:
    env = {**bench.env, "REPLICA_MAX_LAG": "3600", "REPLICA_CHECK_INTERVAL": "0.2"}  # isolate read-your-writes
    ours = AppServer(env, workers=1, threads=8)
    pinned = AppServer({**env, "DJANGO_SETTINGS_MODULE": "bench.pin_settings"}, workers=1, threads=8)
    tracker = ReplayTracker(bench)
    logs: dict[str, list] = {"ours": [], "pin15s": []}
    try:
        for app in (ours, pinned):
            app.start(log=bench.root / f"routing-{app.port}.log")
        time.sleep(1)  # let our monitor take its first samples
        base = {"ours": _replica_reads(ours), "pin15s": _replica_reads(pinned)}
        print(f"{CLIENTS} clients per app (think time ~{THINK}s) for {SECONDS:.0f}s, both apps at once; "
              f"replay paused {PAUSE:.0f}s at a time")  # fmt: skip
        deadline = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=tracker.run),
            threading.Thread(target=_lag_injector, args=(bench.pg, deadline)),
        ]
        for name, app in (("ours", ours), ("pin15s", pinned)):
            threads += [threading.Thread(target=_client, args=(app, n, name, deadline, bench.pg, logs[name]))
                        for n in range(CLIENTS)]  # fmt: skip
        for t in threads[1:]:
            t.start()
        threads[0].start()
        for t in threads[1:]:
            t.join()
        tracker.stop.set()
        threads[0].join()
        bench.pg.resume_replay()
        served = {"ours": _replica_reads(ours) - base["ours"], "pin15s": _replica_reads(pinned) - base["pin15s"]}
    finally:
        bench.pg.resume_replay()
        ours.stop()
        pinned.stop()
    summary = {}
    for name, log in logs.items():
        # A read is answered with the page (200) or, when the row is not found, back to the form (302: stale).
        answered = [entry for entry in log if entry[3] in (200, 302)]
        reads, errors = len(answered), len(log) - len(answered)
        kinds = Counter(str(entry[3]) for entry in log if entry[3] not in (200, 302))
        can = sum(1 for t, lsn, _, _ in answered if tracker.replayed_by(t) >= lsn)
        stale = sum(1 for _, _, ok, _ in answered if not ok)
        share = served[name] / can if can else 0.0
        summary[name] = {"reads": reads, "could_use_replica": can, "served_by_replica": served[name],
                         "share_of_possible": round(share, 3), "stale_own_reads": stale,
                         "failed_requests": errors}  # fmt: skip
        print(f"  {name:7s} reads {reads:6d}   could use replica {can:6d}   replica served {served[name]:6d} "
              f"({share:6.1%} of possible)   stale own-reads {stale}   failed requests {errors}",
              dict(kinds) or "")  # fmt: skip
    summary["failed"] = summary["ours"]["stale_own_reads"] > 0 or any(s["failed_requests"] for s in summary.values())
    return summary
