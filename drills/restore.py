"""Restore drill: a point-in-time restore into a new data folder, then `reapply_erasures`, checked and timed.

For each size in DRILL_RESTORE_SIZES (default 10000,1000000; about 4 minutes for both on a loaded 2-core machine):
1. A fresh primary with WAL archiving (archive_mode=on, archive_command copying each segment to a folder),
   migrated, seeded with `manage.py seed_signups` (COPY), and a base backup (pg_basebackup).
2. After the backup, before T: signups, confirmations, erasures through the app's erase_signup (with their
   ledger entries), and some erased people signing up again. T is read from the primary's clock, with a
   digest of the whole signup table as it stands at T.
3. After T: more signups, confirmations, erasures (of rows from before T: the restore brings them back),
   people who signed up after T and were erased; the worker writes every ledger entry; the primary is lost.
4. Restore (the RTO clock starts): copy the base backup into a new data folder, recovery.signal +
   restore_command (from the archive) + recovery_target_time = T, promote at T (as RDS restores into a new
   instance); start the app (gunicorn) on it; the clock stops when /ready answers "up" on the restored primary.
5. /ready says a restore is pending (the ledger knows erasures this database does not); people erased after
   T who had only signed up after T sign up again; `manage.py reapply_erasures`; then twice more (nothing).
Checks: the table at T and the restored table have the same digest (every row committed before T, none
after); no erased person is back; re-signups kept; the second reapply changed nothing; no address in clear
in the ledger. Figures: RTO (start of the restore to the app answering), reapply seconds, RPO (commits after
T lost; commits before T lost, which must be 0).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.env import BenchEnv
from devenv.servers import BASE_DIR, AppServer, PgCluster, PgServer, local_app_env, local_owner_env

SIZES = [int(s) for s in os.environ.get("DRILL_RESTORE_SIZES", "10000,1000000").split(",") if s.strip()]
PER_PHASE = 25  # signups, confirmations and erasures in each phase
DIGEST = ("SELECT count(*), md5(coalesce(string_agg(id || ':' || email || ':' || coalesce(confirmed_at::text, '-'),"
          " ',' ORDER BY id), '')) FROM users_signup")  # fmt: skip
ERASED = "email LIKE 'erased-%%@invalid'"  # in statements with parameters: % doubled


class _Run:
    """One size: its cluster, archive, backup, ledger folder and app environment."""

    def __init__(self, root: Path, size: int) -> None:
        self.root, self.size = root / f"restore-{size}", size
        self.root.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        self.pg = PgCluster(self.root / "pg", replicas=0)
        # Under the cluster's folder: the postgres user writes the archive and the backup.
        self.archive, self.backup, self.target = (
            self.pg.root / "archive",
            self.pg.root / "base",
            self.pg.root / "restored",
        )
        self.ledger = self.root / "ledger"
        self.restored: PgServer | None = None
        self.app: AppServer | None = None
        self.key = secrets.token_urlsafe(32)
        self.secret = secrets.token_urlsafe(50)
        self.commits_after_t = 0

    # --- environments and commands -----------------------------------------------------------------------------
    def env(self, owner: bool = False) -> dict:
        env = {"SECRET_KEY": self.secret, "STATIC_ROOT": str(self.root / "static"), "LOG_LEVEL": "WARNING",
               "ERASURE_LEDGER_DIR": str(self.ledger), "ERASURE_LEDGER_KEY": self.key, "REDIS_URL": "",
               **local_app_env(self.pg, None)}  # fmt: skip
        return env | local_owner_env(self.pg) if owner else env

    def manage(self, *args: str, owner: bool = False, extra: dict | None = None) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**os.environ, **self.env(owner), **(extra or {})}, timeout=3600)  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-2000:]}")
        return result.stdout

    def erase(self, ids: list[int]) -> None:
        """Erase through the app's own code path (erase_signup: the row, its ledger entry queued), one commit each."""
        self.manage("shell", "-c", f"from users.erasure import erase_signup\nfor pk in {ids!r}: erase_signup(pk)")

    def sql(self, statement: str, params: tuple = (), server: PgServer | None = None) -> list:
        with psycopg.connect(self.pg.url(server or self.pg.primary, owner=True), autocommit=True) as c:
            cur = c.execute(statement, params)
            return cur.fetchall() if cur.description else []

    # --- 1. primary with archiving, seeded, backed up -------------------------------------------------------
    def prepare(self) -> None:
        self.pg.create()
        self.archive.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.archive, "postgres", "postgres")
        with (self.pg.primary.datadir / "postgresql.conf").open("a") as f:
            f.write(
                f"\narchive_mode = on\narchive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'\n"
            )
        self.pg.primary.stop()
        self.pg.primary.start()
        self.manage("migrate", "--noinput", owner=True)
        self.manage("setup_db_roles", owner=True)
        started = time.monotonic()
        # Seeding is set-up, not the app: no statement timeout for its COPY batches on a loaded machine.
        self.manage("seed_signups", "--count", str(self.size), "--seed", "26", "--batch", "20000", owner=True,
                    extra={"DATABASE_STATEMENT_TIMEOUT": "0"})  # fmt: skip
        self.seed_seconds = time.monotonic() - started
        started = time.monotonic()
        port = str(self.pg.primary.port)
        self.pg.primary._run("pg_basebackup", "-D", str(self.backup), "-h", "127.0.0.1", "-p", port, "-U", "postgres",
                             "-X", "stream", "-c", "fast", env={"PGPASSWORD": self.pg.admin_password})  # fmt: skip
        self.backup_seconds = time.monotonic() - started

    # --- 2 and 3. the work before and after T --------------------------------------------------------------
    def signup(self, email: str) -> int:
        return self.sql("INSERT INTO users_signup (full_name, email, phone, country, consent, consent_at, "
                        "consent_version, created_at, user_agent) VALUES ('Drill Person', %s, '', 'GB', true, now(), "
                        "'v1', now(), '') RETURNING id", (email,))[0][0]  # fmt: skip

    def seeded(self, offset: int, count: int) -> list[tuple[int, str]]:
        return self.sql(f"SELECT id, email FROM users_signup WHERE NOT {ERASED} AND confirmed_at IS NULL "
                        "AND email LIKE '%%@example.%%' ORDER BY id OFFSET %s LIMIT %s", (offset, count))  # fmt: skip

    def work(self) -> dict:
        n = PER_PHASE
        before_erased = self.seeded(0, n)
        before_confirmed = self.seeded(n, n)
        after_erased = self.seeded(2 * n, n)
        after_confirmed = self.seeded(3 * n, n)
        # Before T: new signups, confirmations, erasures; a few erased people sign up again.
        new_before = [(self.signup(f"before-{i}@example.net"), f"before-{i}@example.net") for i in range(n)]
        for pk, _ in before_confirmed:
            self.sql("UPDATE users_signup SET confirmed_at = now() WHERE id = %s", (pk,))
        self.erase([pk for pk, _ in before_erased] + [pk for pk, _ in new_before[:5]])
        resigned_before = [self.signup(email) for _, email in before_erased[:5]]  # new consent, before T
        count, digest_at_t = self.sql(DIGEST)[0]
        t = self.sql("SELECT clock_timestamp()")[0][0]
        time.sleep(0.3)
        # After T: all of this is lost by the restore; the erasures must come back from the ledger.
        new_after = [self.signup(f"after-{i}@example.net") for i in range(n)]
        for pk, _ in after_confirmed:
            self.sql("UPDATE users_signup SET confirmed_at = now() WHERE id = %s", (pk,))
        lost_people = [(self.signup(f"lost-{i}@example.net"), f"lost-{i}@example.net") for i in range(5)]
        self.erase([pk for pk, _ in after_erased] + [pk for pk, _ in new_before[5:10]] + [pk for pk, _ in lost_people])
        for _, email in after_erased[:5]:
            self.signup(email)  # signed up again after T: lost with the restore
        self.commits_after_t = n + n + 5 + (n + 5 + 5) + 5
        self.manage("worker", "--batch")  # every ledger entry lands
        segment = self.pg.admin_sql("SELECT pg_walfile_name(pg_switch_wal() - 1)")[0][0]  # the one just completed
        archived = "SELECT last_archived_wal FROM pg_stat_archiver"
        self._wait(lambda: (self.pg.admin_sql(archived)[0][0] or "") >= segment, 60, "archiving of the WAL past T")
        self.pg.primary.stop("immediate")  # the primary is lost
        erased = before_erased + after_erased + new_before[:10] + lost_people
        return {"t": t, "count_at_t": count, "digest_at_t": digest_at_t, "new_after": new_after,
                "after_confirmed": [pk for pk, _ in after_confirmed], "erased": erased,
                "resigned_before": resigned_before, "lost_people": lost_people}  # fmt: skip

    # --- 4. the restore -------------------------------------------------------------------------------------
    def restore(self, t) -> float:
        started = time.monotonic()
        target = self.target
        subprocess.run(["cp", "-a", str(self.backup), str(target)], check=True)  # keeps the postgres owner
        self.restored = PgServer(target, self.pg.primary.port + 0, self.pg.primary.bindir)
        for stale in target.glob(".s.PGSQL.*"):  # the old server's socket lock, copied with the backup
            stale.unlink()
        (target / "recovery.signal").touch()
        with (target / "postgresql.auto.conf").open("a") as f:
            f.write(f"\nrestore_command = 'cp {self.archive}/%f %p'\nrecovery_target_time = '{t.isoformat()}'\n"
                    "recovery_target_action = 'promote'\narchive_mode = off\n")  # fmt: skip
        if os.geteuid() == 0:
            shutil.chown(target / "recovery.signal", "postgres", "postgres")
        self.restored.start()
        self._wait(lambda: self.sql("SELECT NOT pg_is_in_recovery()", server=self.restored)[0][0], 600, "promotion")
        self.pg.primary = self.restored  # the app's URLs now name the restored server (same port: a new endpoint)
        self.app = AppServer(env=self.env(), workers=1, threads=2)
        self.app.start(self.root / "app.log")
        self._wait(self._ready_up, 120, "the app on the restored database")
        return time.monotonic() - started

    def ready(self) -> dict:
        import urllib.request

        from devenv.servers import LOCAL_READY_TOKEN

        request = urllib.request.Request(
            f"{self.app.url}/ready", headers={"Authorization": f"Bearer {LOCAL_READY_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def _ready_up(self) -> bool:
        try:
            return self.ready()["checks"]["default"]["status"] == "up"
        except OSError:
            return False

    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except psycopg.Error:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready within {timeout:.0f} s")

    def stop(self) -> None:
        if self.app:
            self.app.stop()
        if self.restored:
            self.restored.stop()
        self.pg.stop()


def _one(root: Path, size: int) -> tuple[dict, list[dict]]:
    run = _Run(root, size)
    try:
        print(f"restore {size:,}: seeding and backing up ...", flush=True)
        run.prepare()
        w = run.work()
        print(f"restore {size:,}: restoring to T into a new data folder ...", flush=True)
        rto = run.restore(w["t"])
        run._wait(lambda: run.ready().get("erasure_ledger", {}).get("restore_pending") is not None, 60, "ledger check")
        pending_before = run.ready()["erasure_ledger"]["restore_pending"]
        count, digest = run.sql(DIGEST)[0]
        after_ids = [pk for pk in w["new_after"]]
        present_after = run.sql("SELECT count(*) FROM users_signup WHERE id = ANY(%s) OR email LIKE 'after-%%' "
                                "OR email LIKE 'lost-%%'", (after_ids,))[0][0]  # fmt: skip
        confirmed_after = run.sql("SELECT count(*) FROM users_signup WHERE id = ANY(%s) AND confirmed_at IS NOT NULL",
                                  (w["after_confirmed"],))[0][0]  # fmt: skip
        resigned_after = [run.signup(email) for _, email in w["lost_people"]]  # after the restore: new consent
        started = time.monotonic()
        first = run.manage("reapply_erasures").strip().splitlines()[-1]  # its summary (log lines come first)
        reapply_seconds = time.monotonic() - started
        digest_after_first = run.sql(DIGEST)[0]
        second = run.manage("reapply_erasures").strip().splitlines()[-1]
        digest_after_second = run.sql(DIGEST)[0]
        erased = w["erased"]
        back = run.sql(f"SELECT count(*) FROM users_signup WHERE id = ANY(%s) AND NOT {ERASED}",
                       ([pk for pk, _ in erased],))[0][0]  # fmt: skip
        kept_ids = w["resigned_before"] + resigned_after
        live_erased_addresses = run.sql(f"SELECT id FROM users_signup WHERE NOT {ERASED} AND lower(email) = ANY(%s)",
                                        ([e.lower() for _, e in erased],))  # fmt: skip
        ledger_text = b"".join(p.read_bytes() for p in run.ledger.rglob("*.json")).lower()
        in_clear = sum(e.lower().encode() in ledger_text for _, e in erased)
        figures = {"rows": size, "seed_s": round(run.seed_seconds, 1), "backup_s": round(run.backup_seconds, 1),
                   "rto_s": round(rto, 1), "reapply_s": round(reapply_seconds, 1),
                   "rto_with_reapply_s": round(rto + reapply_seconds, 1), "commits_lost_after_t": run.commits_after_t,
                   "commits_lost_before_t": 0 if digest == w["digest_at_t"] else -1,
                   "ledger_entries": len(list(run.ledger.rglob("*.json"))), "reapply": first,
                   "reapply_again": second}  # fmt: skip
        checks = [
            {"what": "every row committed before T is back as it was at T, none after (table digest)",
             "passed": (count, digest) == (w["count_at_t"], w["digest_at_t"]) and present_after == 0
             and confirmed_after == 0, "seen": f"{count} rows, {present_after} post-T rows, {confirmed_after} post-T"
             " confirmations"},
            {"what": "the app saw the restore (ledger entries unknown to the database) before reapply",
             "passed": pending_before is True, "seen": str(pending_before)},
            {"what": "no erased person is back", "passed": back == 0, "seen": f"{back} erased rows back"},
            {"what": "people who signed up again after their erasure are kept",
             "passed": sorted(r[0] for r in live_erased_addresses) == sorted(kept_ids),
             "seen": f"{len(live_erased_addresses)} live rows at erased addresses, {len(kept_ids)} re-signups"},
            {"what": "the second reapply_erasures changes nothing",
             "passed": digest_after_second == digest_after_first and " 0 rows erased again" in second,
             "seen": second},
            {"what": "the ledger holds no address in clear", "passed": in_clear == 0, "seen": f"{in_clear} found"},
        ]  # fmt: skip
        return figures, checks
    except Exception:
        for log in (run.target.parent / "restored.log", run.root / "app.log"):
            if log.exists():
                print(f"--- {log.name} (last lines) ---\n" + "\n".join(log.read_text().splitlines()[-15:]), flush=True)
        raise
    finally:
        run.stop()


def standalone(env: BenchEnv) -> dict:
    """Run the drill at every size; return the result document __main__ records."""
    sizes, checks = [], []
    for size in SIZES:
        figures, size_checks = _one(env.root, size)
        sizes.append(figures)
        for check in size_checks:
            checks.append({**check, "what": f"{size:,} rows: {check['what']}"})
        print(f"restore {size:,} rows: RTO {figures['rto_s']} s to the app answering on the restored database "
              f"(+ reapply_erasures {figures['reapply_s']} s = {figures['rto_with_reapply_s']} s); RPO: "
              f"{figures['commits_lost_after_t']} commits after T lost (the target), "
              f"{max(figures['commits_lost_before_t'], 0)} before T; seed {figures['seed_s']} s, base backup "
              f"{figures['backup_s']} s", flush=True)  # fmt: skip
        print(f"  1st: {figures['reapply']}\n  2nd: {figures['reapply_again']}", flush=True)
    for check in checks:
        print(f"  [{'PASS' if check['passed'] else 'FAIL'}] {check['what']} ({check['seen']})", flush=True)
    return {"drill": "restore", "failed": not all(c["passed"] for c in checks), "checks": checks,
            "figures": {"sizes": sizes}, "missing": 0}  # fmt: skip
