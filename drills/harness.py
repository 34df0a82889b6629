"""How every drill runs: a fresh app under load, a baseline, the fault for a bounded time, recovery, checks.

1. Start the app under gunicorn (2 workers x 4 threads) on the shared primary + replica + Redis.
2. Warm it up (a few unrecorded requests), start the load (drills/load.py), measure BASELINE seconds.
3. Inject the fault; after a second, verify it really happened (a process stopped, a port refusing, replay
   paused ...): a fault that cannot be observed fails the drill, its figures would mean nothing.
4. Keep the fault for FAULT seconds, then restore it (always, even when something above failed).
5. From that moment a probe repeats health + home + form + signup until all succeed (recovered_after);
   the load goes on for RECOVERY seconds, then stops and waits for requests in flight (each <= 15 s).
6. Acknowledged signups (POSTs answered 302) missing from the primary afterwards are counted.
7. Checks every drill has (fault observed, 0 missing, recovered, no 500, no stale read of one's own signup;
   for replica drills: the app really read from the replica before the fault) plus the drill's own.
Requests belong to the phase in which they were sent.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bench.env import BenchEnv
from devenv.servers import AppServer, PgCluster, PgServer
from drills.load import GET_PAGES, Load
from drills.report import Check, figures, summarise, table

BASELINE = float(os.environ.get("DRILL_BASELINE_SECONDS", "4"))
FAULT = float(os.environ.get("DRILL_FAULT_SECONDS", "8"))
RECOVERY = float(os.environ.get("DRILL_RECOVERY_SECONDS", "3"))
HANG_FAULT = float(os.environ.get("DRILL_HANG_FAULT_SECONDS", "12"))  # > the 10 s a request may wait
RECOVERY_LIMIT = 30.0  # seconds after the fault ends by which requests must succeed again
VERIFY_AFTER = 1.0  # seconds into the fault when it is verified


class FaultNotObserved(AssertionError):
    """The fault was injected but its effect could not be seen: the drill's figures would mean nothing."""


@dataclass
class Fault:
    describe: str
    inject: Callable[[], None]
    verify: Callable[[], str]  # what was observed; raises FaultNotObserved
    restore: Callable[[], None]


@dataclass
class Outcome:
    """What a drill measured, handed to its checks."""

    summary: dict
    acknowledged: int
    missing: list[str]
    recovered_after: float | None
    observed: str
    records: list = field(repr=False, default_factory=list)
    fault_start: float = 0.0
    fault_end: float = 0.0

    def during_fault(self, *kinds: str) -> list:
        return [r for r in self.records if r.kind in kinds and self.fault_start <= r.started < self.fault_end]


@dataclass
class Drill:
    name: str
    fault: Fault
    checks: list[Callable[[Outcome], Check]] = field(default_factory=list)
    app_env: dict = field(default_factory=dict)
    primary: Callable[[], PgServer] | None = None  # where acknowledged signups must be afterwards
    front: Callable[[AppServer], int] | None = None  # a port in front of the app (a proxy), else the app's
    cleanup: list[Callable[[], None]] = field(default_factory=list)  # after the app stopped
    # A check "answers within N s" means something only if the fault outlasts N s: a hang shorter than the
    # limit would pass. Drills with such a check set this above their limit.
    fault_seconds: float = FAULT
    # The drill is about the replica: show the app really read from it during the baseline (else it proves nothing).
    reads_replica: bool = False


# --- acknowledged signups ---------------------------------------------------------------------------------
def missing_acknowledged(url: str, emails: list[str]) -> list[str]:
    """Return the acknowledged emails that are not in users_signup on the database at `url`."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT lower(email) FROM users_signup WHERE lower(email) = ANY(%s)",
                            [[e.lower() for e in emails]]).fetchall()  # fmt: skip
    found = {row[0] for row in rows}
    return [e for e in emails if e.lower() not in found]


def signup_table_reads(pg: PgCluster, server: PgServer) -> int:
    """Scans of users_signup that `server` has answered so far (its own statistics; a standby keeps them too)."""
    import psycopg

    with psycopg.connect(owner_url(pg, server), connect_timeout=5) as conn:
        sql = "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = %s"
        return conn.execute(sql, ["users_signup"]).fetchone()[0]


def _counting_replica_reads(env: BenchEnv, fault: Fault, reads: list) -> Fault:
    """The same fault, counting the replica's scans of users_signup from now until just before injection."""
    start = signup_table_reads(env.pg, env.pg.replica)

    def inject() -> None:
        reads.append(signup_table_reads(env.pg, env.pg.replica) - start)
        fault.inject()

    return replace(fault, inject=inject)


def owner_url(pg: PgCluster, server: PgServer) -> str:
    """The superuser on the app's database (whatever role the app itself connects as)."""
    return f"postgres://postgres:{pg.admin_password}@127.0.0.1:{server.port}/{pg.db}?sslmode=disable"


# --- the run ----------------------------------------------------------------------------------------------
def _probe_recovery(load: Load, since: float, result: list) -> None:
    """Repeat one of each request until all succeed; record seconds since `since` (None if never)."""
    deadline = since + RECOVERY_LIMIT
    while time.monotonic() < deadline:
        got = [load.request("health", "GET", "/health")[0], load.request("home", "GET", "/")[0],
               load.request("form", "GET", "/signup/")[0], load.signup()]  # fmt: skip
        if got == ["200", "200", "200", "302"]:
            result.append(time.monotonic() - since)
            return
        time.sleep(0.25)
    result.append(None)


def run(env: BenchEnv, drill: Drill) -> dict:
    """Run one drill; print its figures and checks; return them as a dict (JSON-ready)."""
    print(f"fault: {drill.fault.describe}; baseline {BASELINE:.0f} s, fault {drill.fault_seconds:.0f} s, "
          f"recovery {RECOVERY:.0f} s", flush=True)  # fmt: skip
    began = time.monotonic()
    app = AppServer({**env.env, **drill.app_env}, workers=2, threads=4)
    try:
        app.start(log=env.root / f"drill-{drill.name}.log")
        load = Load("127.0.0.1", drill.front(app) if drill.front else app.port, f"{drill.name}-{secrets.token_hex(4)}")
        replica_reads: list[int] = []
        fault = _counting_replica_reads(env, drill.fault, replica_reads) if drill.reads_replica else drill.fault
        window, observed, recovered, drained = _phases(fault, drill.fault_seconds, load)
    finally:
        app.stop()
        for cleanup in drill.cleanup:
            cleanup()
    server = drill.primary() if drill.primary else env.pg.primary
    missing = missing_acknowledged(owner_url(env.pg, server), load.acknowledged)
    outcome = Outcome(summarise(load.records, *window), len(load.acknowledged), missing, recovered, observed,
                      load.records, *window)  # fmt: skip
    checks = [_fault_observed(outcome), _no_loss(outcome), _recovered(outcome), _no_500(outcome),
              _own_signup_read_back(outcome)]  # fmt: skip
    if drill.reads_replica:
        n = replica_reads[0] if replica_reads else 0
        checks.insert(1, Check("the app read from the replica before the fault", n > 0,
                               f"{n} scans of users_signup on the replica during the baseline"))  # fmt: skip
    checks += [check(outcome) for check in drill.checks]
    _print(outcome, checks, drained)
    print(f"drill took {time.monotonic() - began:.0f} s")
    return {
        "drill": drill.name, "fault": drill.fault.describe, "observed": observed,
        "seconds": {"baseline": BASELINE, "fault": round(window[1] - window[0], 1), "recovery": RECOVERY},
        "figures": outcome.summary, "acknowledged": outcome.acknowledged, "missing": len(missing),
        "missing_emails": missing[:20], "recovered_after_s": recovered and round(recovered, 2),
        "checks": [{"what": c.what, "passed": c.passed, "figure": c.figure} for c in checks],
        "failed": not all(c.passed for c in checks),
    }  # fmt: skip


def _warm_up(load: Load) -> None:
    """A few requests of each class before the baseline: a fresh worker's first requests are not normal."""
    for _ in range(3):
        load.request("home", "GET", "/")
        load.request("form", "GET", "/signup/")
        load.signup()
    del load.records[:]  # the acknowledged emails stay: they are checked like every other


def _phases(fault: Fault, seconds: float, load: Load) -> tuple[tuple[float, float], str, float | None, float]:
    """Baseline, fault, recovery under load; return the fault's window, what was observed, when requests
    succeeded again (seconds after the fault, None if never) and how long requests in flight took to end."""
    recovered: list = []
    prober = None
    try:
        _warm_up(load)
        load.start()
        time.sleep(BASELINE)
        fault_start = time.monotonic()
        try:
            fault.inject()
            time.sleep(VERIFY_AFTER)
            try:
                observed = fault.verify()
            except Exception as exc:  # whatever stopped the verification, the fault was not seen
                observed = f"NOT OBSERVED: {exc}"
            time.sleep(max(0.0, fault_start + seconds - time.monotonic()))
        finally:
            fault.restore()
            fault_end = time.monotonic()
        prober = threading.Thread(target=_probe_recovery, args=(load, fault_end, recovered))
        prober.start()
        time.sleep(RECOVERY)
    finally:
        drained = load.stop()
        if prober:
            prober.join()
    return (fault_start, fault_end), observed, recovered[0], drained


def _print(outcome: Outcome, checks: list[Check], drained: float) -> None:
    print(f"observed: {outcome.observed}")
    print(table(outcome.summary))
    print(f"acknowledged signups {outcome.acknowledged}, missing from the primary afterwards {len(outcome.missing)}"
          f"; waited {drained:.1f} s for requests in flight")  # fmt: skip
    for check in checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.what}: {check.figure}", flush=True)


# --- checks every drill has ----------------------------------------------------------------------------------
def _fault_observed(o: Outcome) -> Check:
    return Check("the fault really happened", not o.observed.startswith("NOT OBSERVED"), o.observed)


def _no_loss(o: Outcome) -> Check:
    return Check("0 acknowledged signups lost", not o.missing and o.acknowledged > 0,
                 f"{len(o.missing)} of {o.acknowledged} missing")  # fmt: skip


def _recovered(o: Outcome) -> Check:
    if o.recovered_after is None:
        return Check("requests succeed again after the fault", False, f"not within {RECOVERY_LIMIT:.0f} s")
    return Check("requests succeed again after the fault", True, f"after {o.recovered_after:.1f} s")


def _no_500(o: Outcome) -> Check:
    n = o.summary["all"]["statuses"].get("500", 0)
    return Check("no 500 answers (BRIEF 4: never a 5xx but the friendly 503)", n == 0, f"{n} x 500")


def _own_signup_read_back(o: Outcome) -> Check:
    # The thank-you page redirects back to the form when it cannot find the row: a stale read of one's own write.
    thanks = [r for r in o.records if r.kind == "thanks"]
    stale = sum(r.status == "302" for r in thanks)
    return Check("each thank-you page finds the person's own signup (no stale read)", stale == 0,
                 f"{stale} of {len(thanks)} sent back to the form")  # fmt: skip


# --- checks a drill picks (the acceptance) -----------------------------------------------------------
def _slowest(records: list) -> str:
    return f"max {max((r.seconds for r in records), default=0):.2f} s"


def get_pages_all_200_within(limit: float) -> Callable[[Outcome], Check]:
    def check(o: Outcome) -> Check:
        pages = o.during_fault(*GET_PAGES)
        bad = figures([r for r in pages if r.status != "200"])
        slow = [r for r in pages if r.seconds > limit]
        return Check(f"GET pages during the fault: 0 non-200, none slower than {limit:.0f} s",
                     bool(pages) and not bad["sent"] and not slow,
                     f"{len(pages)} sent, {bad['sent']} non-200 {bad['statuses']}, {len(slow)} slower, "
                     f"{_slowest(pages)}")  # fmt: skip

    return check


def signups_answer_503_within(limit: float) -> Callable[[Outcome], Check]:
    def check(o: Outcome) -> Check:
        posts = o.during_fault("signup")
        bad = [r for r in posts if r.status not in {"503", "302"} or r.seconds > limit]
        f = figures(posts)
        return Check(f"signups during the fault answer 503 within {limit:.0f} s", bool(posts) and not bad,
                     f"{len(posts)} sent {f['statuses']}, {len(bad)} not a 503 in time, {_slowest(posts)}")  # fmt: skip

    return check


def signup_p50_within(factor: float) -> Callable[[Outcome], Check]:
    def check(o: Outcome) -> Check:
        normal, during = o.summary["baseline"]["signup"]["p50_ms"], o.summary["fault"]["signup"]["p50_ms"]
        passed = o.summary["fault"]["signup"]["sent"] > 0 and normal > 0 and during <= factor * normal
        return Check(f"signup p50 during the fault within {factor:g}x of normal", passed,
                     f"{during:.0f} ms vs {normal:.0f} ms ({during / normal if normal else 0:.1f}x)")  # fmt: skip

    return check


def answered_within(kind: str, expected: str, limit: float) -> Callable[[Outcome], Check]:
    def check(o: Outcome) -> Check:
        mine = o.during_fault(kind)
        bad = [r for r in mine if r.status != expected or r.seconds > limit]
        figure = f"{len(mine)} sent {figures(mine)['statuses']}, {len(bad)} late or failed, {_slowest(mine)}"
        return Check(f"{kind} during the fault answers {expected} within {limit:g} s", bool(mine) and not bad, figure)

    return check
