"""`manage.py worker`: run the queue (users/tasks.py) until SIGTERM; the project's one entry point for it.

How it keeps every email without holding anything while SES answers (django-tasks-db's own db_worker marks
a row RUNNING for ever when it dies, and never retries):
1. Claim: in one short transaction, take the next ready row (SELECT ... FOR UPDATE SKIP LOCKED, the library's
   get_locked), or a RUNNING row whose lease (EMAIL_LEASE_SECONDS from its claim) ran out because its worker
   died; mark it RUNNING with this worker's id appended to worker_ids, and commit. The attempt is counted
   (attempts = len(worker_ids)) before anything is sent, so it survives the process.
2. Send with no transaction and no row lock open: an erasure of that person deletes the row at once; the
   email in flight still goes (it was rendered from the row before the erasure).
3. Record the result in a second short statement that only touches the row if it is still this claim's
   (same started_at, still RUNNING): a row erased meanwhile stays gone.
4. A failed send goes back to READY with back-off (EMAIL_RETRY_SECONDS doubling, at most an hour, with jitter)
   until EMAIL_MAX_ATTEMPTS; then it is failed. A row whose lease ran out EMAIL_MAX_ATTEMPTS times (a message
   that kills the worker, a host that keeps dying) is failed when next claimed, without being sent again.
   A failed row keeps the exception's class and frames, never its message (users.tasks.safe_traceback).
5. SIGTERM/SIGINT finish the current task, then stop; a second signal stops at once (the lease runs out and
   the row is retried; it may go twice).
6. Consecutive failures pause the whole worker (back-off up to 8 x EMAIL_RETRY_SECONDS): with SES down it
   does not burn through the queue one timeout at a time, and the untried rows go at once when SES is back.
7. A database outage is waited out (bounded retries of the loop), never a crash loop.
8. Every QUEUE_PRUNE_SECONDS it deletes finished rows older than QUEUE_KEEP_DAYS (users.tasks.prune), in
   batches: the table stays small without a schedule of its own (django-tasks-db's prune_db_task_results
   deletes in one unbounded statement, over the app role's 5 s statement timeout at a few million rows).
9. After a database restore it holds email: while the erasure ledger names erasures this database does not
   know (users.tombstones.restore_pending; also while that has not been checked once), only ledger entries
   are run, no email and no webhook, until `manage.py reapply_erasures` has erased those people again. Ledger entries
   (users.tasks.write_tombstone) are never failed for good: they are retried with back-off until S3 takes them.
10. Outgoing webhooks are delivered by WEBHOOK_DELIVERY_THREADS threads of this process (api/runner.py,
    api/delivery.py: their own claims and leases, so a slow receiver never holds up an email).
"""

from __future__ import annotations

import logging
import random
import signal
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, close_old_connections, connections, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult

from api.runner import DeliveryThreads, run_until_idle
from project import metrics
from users import tasks, tombstones
from users.tasks import send_email, write_tombstone

logger = logging.getLogger("users.worker")

MAX_BACKOFF_SECONDS = 3600
PAUSE_STEPS = 4  # a run of failures pauses the worker at most EMAIL_RETRY_SECONDS x 2**(PAUSE_STEPS - 1)
RETRY_FOREVER = {write_tombstone.module_path}  # an erasure ledger entry must land, however long S3 is down
LEASE_LOST = "users.worker.LeaseExpired"  # exception_class_path of a row whose worker died EMAIL_MAX_ATTEMPTS times


def backoff(attempts: int) -> float:
    """Return seconds to wait before attempt `attempts + 1`: doubling from EMAIL_RETRY_SECONDS, capped, jittered."""
    base = min(settings.EMAIL_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return base * random.uniform(1.0, 1.2)


class QueueWorker:
    def __init__(self, *, interval: float, batch: bool, worker_id: str) -> None:
        self.interval, self.batch, self.worker_id = interval, batch, worker_id
        self.running = True
        self.busy = False
        self.counts = {"done": 0, "retried": 0, "failed": 0}
        self.failures_in_row = 0
        self.pruned_at = 0.0  # monotonic time of the last prune; 0: prune at start

    def stop(self, signum, frame) -> None:
        # Only a second signal raises here: an exception thrown into whatever the process is doing (a claim's
        # query, a savepoint) could end it with that statement's error instead of a clean stop.
        if not self.running:
            raise SystemExit(1 if self.busy else 0)  # asked twice: stop now (the lease runs out, the row is retried)
        logger.info("worker %s: %s, %s", self.worker_id, signal.strsignal(signum),
                    "finishing the current task" if self.busy else "stopping")  # fmt: skip
        self.running = False

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking within 0.1 s of a stop signal (the handler returns; a plain sleep would run on)."""
        deadline = time.monotonic() + seconds
        while self.running and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    def run(self) -> None:
        logger.info("worker %s started (queue %s)", self.worker_id, send_email.queue_name)
        while self.running:
            close_old_connections()
            try:
                if not self.batch:
                    self._prune_when_due()
                did_one = self.run_one()
            except (OperationalError, InterfaceError) as exc:
                logger.warning("worker: database unavailable (%s), trying again", exc.__class__.__name__)
                connections.close_all()
                self._sleep(max(self.interval, 1.0))
                continue
            if not did_one:
                if self.batch:
                    return
                self._sleep(self.interval)
            elif self.failures_in_row and not self.batch:
                self._sleep(backoff(min(self.failures_in_row, PAUSE_STEPS)))

    def _prune_when_due(self) -> None:
        if self.pruned_at and time.monotonic() - self.pruned_at < settings.QUEUE_PRUNE_SECONDS:
            return
        self.pruned_at = time.monotonic()
        pruned = tasks.prune(keep_days=settings.QUEUE_KEEP_DAYS, using=router.db_for_write(DBTaskResult))
        logger.info("worker %s: %d finished task(s) older than %d days pruned", self.worker_id, pruned,
                    settings.QUEUE_KEEP_DAYS)  # fmt: skip

    def run_one(self) -> bool:
        """Claim one task and commit, run it outside any transaction, record the result; say whether there was one."""
        using = router.db_for_write(DBTaskResult)
        row = self._claim(using)
        if row is None:
            return False
        if row.status == "FAILED":  # its lease ran out too often: settled in the claim, nothing to send
            return True
        self.busy = True
        try:
            self._execute(row, using)
        finally:
            self.busy = False
        return True

    def _claim(self, using: str) -> DBTaskResult | None:
        rows = DBTaskResult.objects.using(using).filter(queue_name=send_email.queue_name)
        if self.on_hold():
            rows = rows.exclude(task_path=send_email.module_path)
        lease = timedelta(seconds=settings.EMAIL_LEASE_SECONDS)
        with transaction.atomic(using=using):
            expired = rows.filter(Q(status="RUNNING"), started_at__lt=timezone.now() - lease).order_by("started_at")
            row = expired.select_for_update(skip_locked=True).first() or rows.ready().get_locked()
            if row is None:
                return None
            if row.status == "RUNNING":
                logger.warning("task %s: lease of worker %s ran out (attempt %d)", row.id, row.worker_ids[-1:],
                               len(row.worker_ids))  # fmt: skip
                if len(row.worker_ids) >= settings.EMAIL_MAX_ATTEMPTS:
                    self._lease_lost(row, using)
                    return row
            row.claim(self.worker_id)  # RUNNING, started_at, worker_ids + [us]: the attempt counts from here
        return row

    def on_hold(self) -> bool:
        """Say whether email and webhooks wait: the database was restored and reapply_erasures has not run yet."""
        return tombstones.restore_pending() is not False

    def _lease_lost(self, row: DBTaskResult, using: str) -> None:
        row.status, row.finished_at, row.return_value = "FAILED", timezone.now(), None
        row.exception_class_path = LEASE_LOST
        row.traceback = f"The worker died or hung while running this task, {len(row.worker_ids)} times.\n"
        row.save(using=using, update_fields=["status", "finished_at", "return_value", "exception_class_path",
                                             "traceback"])  # fmt: skip
        self.counts["failed"] += 1
        logger.error("task %s failed for good: its worker died %d times", row.id, len(row.worker_ids))

    def _execute(self, row: DBTaskResult, using: str) -> None:
        with metrics.collect() as counted:  # one log line per task carries its metrics (EMF)
            self._run(row, using)
        logger.info("task %s run", row.id, extra=(metrics.documents(counted) or [{}])[0])

    def _run(self, row: DBTaskResult, using: str) -> None:
        args = row.args_kwargs
        try:
            value = row.task.call(*args["args"], **args["kwargs"])
        except Exception as exc:
            metrics.incr("EmailsFailed")
            self.failures_in_row += 1
            self._failed(row, exc, using)
        else:
            metrics.incr("EmailsSent", int(value == "sent"))  # 0 when skipped (erased, blocked)
            self.failures_in_row = 0
            done = {"status": "SUCCESSFUL", "finished_at": timezone.now(), "return_value": value,
                    "exception_class_path": "", "traceback": ""}  # fmt: skip
            self._record(row, using, done)
            self.counts["done"] += 1

    def _record(self, row: DBTaskResult, using: str, values: dict) -> None:
        """Write the result if the row is still this claim's (an erasure may have deleted it meanwhile)."""
        mine = DBTaskResult.objects.using(using).filter(pk=row.pk, status="RUNNING", started_at=row.started_at)
        if not mine.update(**values):
            logger.info("task %s: gone or reclaimed while running (erased?), result not recorded", row.id)

    def _failed(self, row: DBTaskResult, exc: Exception, using: str) -> None:
        # The exception's class only, in the log and the row: its message may quote an address.
        attempts = len(row.worker_ids)
        error = {"exception_class_path": f"{type(exc).__module__}.{type(exc).__qualname__}",
                 "traceback": tasks.safe_traceback(exc)}  # fmt: skip
        if attempts >= settings.EMAIL_MAX_ATTEMPTS and row.task_path not in RETRY_FOREVER:
            self._record(row, using, {"status": "FAILED", "finished_at": timezone.now(), "return_value": None, **error})
            self.counts["failed"] += 1
            logger.error("task %s failed for good after %d attempts (%s)", row.id, attempts, exc.__class__.__name__)
            return
        delay = backoff(attempts)
        self._record(row, using, {"status": "READY", "run_after": timezone.now() + timedelta(seconds=delay), **error})
        self.counts["retried"] += 1
        logger.warning("task %s failed (attempt %d of %d, %s): retry in %.1f s", row.id, attempts,
                       settings.EMAIL_MAX_ATTEMPTS, exc.__class__.__name__, delay)  # fmt: skip


class Command(BaseCommand):
    help = "Run the queue worker (sends queued emails, with retries and back-off); SIGTERM finishes the current task."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds to sleep when the queue is empty.")
        parser.add_argument("--batch", action="store_true", help="Run every ready task, then exit (tests, one-offs).")
        parser.add_argument("--worker-id", default="", help="Name recorded on each claimed row (default: random).")

    def handle(self, *, interval: float, batch: bool, worker_id: str, **options) -> None:
        worker = QueueWorker(interval=interval, batch=batch, worker_id=worker_id or get_random_string(12))
        signal.signal(signal.SIGTERM, worker.stop)
        signal.signal(signal.SIGINT, worker.stop)
        # Outgoing webhooks (api/runner.py): threads beside the email loop; in --batch, after it, in this thread.
        # After a database restore they hold too, like email (restore_pending), until reapply_erasures has run.
        webhooks = DeliveryThreads(0 if batch else settings.WEBHOOK_DELIVERY_THREADS, lambda: worker.running, interval,
                                   held=worker.on_hold)  # fmt: skip
        webhooks.start()
        try:
            worker.run()
            if batch:
                run_until_idle(held=worker.on_hold)
        finally:
            webhooks.join(settings.WEBHOOK_TIMEOUT_SECONDS + 1)
            counts = worker.counts
            logger.info("worker %s stopped: %d done, %d to retry, %d failed", worker.worker_id, counts["done"],
                        counts["retried"], counts["failed"])  # fmt: skip
