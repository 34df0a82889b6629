"""`manage.py worker`: run the queue (users/tasks.py) until SIGTERM; the project's one entry point for it.

How it keeps every email (django-tasks-db's own db_worker marks a row RUNNING and commits before running
it, so a killed worker would leave the row RUNNING for ever, and it never retries):
1. Claim the next ready row with SELECT ... FOR UPDATE SKIP LOCKED (the library's get_locked) and keep that
   transaction open while the task runs: other workers skip the row, and should this process die (SIGKILL,
   a lost host) PostgreSQL rolls the claim back and the row is ready again. Nothing is lost; the one email
   in flight may go twice if the process died between SES's answer and the commit.
2. The task runs in a savepoint: when it fails, its own writes roll back, the claim does not.
3. A failed task is put back with back-off (EMAIL_RETRY_SECONDS doubling, at most an hour, with jitter)
   until EMAIL_MAX_ATTEMPTS; then it is marked failed. Attempts = claims recorded in worker_ids.
4. SIGTERM/SIGINT finish the current task, then stop; a second signal stops at once (the claim rolls back).
5. Consecutive failures pause the whole worker (back-off up to 8 x EMAIL_RETRY_SECONDS): with SES down it
   does not burn through the queue one timeout at a time, and the untried rows go at once when SES is back.
6. A database outage is waited out (bounded retries of the loop), never a crash loop.
"""

from __future__ import annotations

import logging
import random
import signal
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, close_old_connections, connections, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult

from project import metrics
from users.tasks import send_email

logger = logging.getLogger("users.worker")

MAX_BACKOFF_SECONDS = 3600
PAUSE_STEPS = 4  # a run of failures pauses the worker at most EMAIL_RETRY_SECONDS x 2**(PAUSE_STEPS - 1)


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

    def stop(self, signum, frame) -> None:
        # Only a second signal raises here: an exception thrown into whatever the process is doing (a claim's
        # query, a savepoint) could end it with that statement's error instead of a clean stop.
        if not self.running:
            raise SystemExit(1 if self.busy else 0)  # asked twice: stop now (a claim in flight rolls back)
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

    def run_one(self) -> bool:
        """Claim, run and settle one ready task in one transaction; say whether there was one."""
        using = router.db_for_write(DBTaskResult)
        ready = DBTaskResult.objects.using(using).ready().filter(queue_name=send_email.queue_name)
        with transaction.atomic(using=using):
            if connections[using].vendor == "postgresql":  # the claim stays open while SES answers (<= ~30 s)
                with connections[using].cursor() as cursor:
                    cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '120s'")
            row = ready.get_locked()
            if row is None:
                return False
            self.busy = True
            try:
                row.claim(self.worker_id)
                self._execute(row, using)
            finally:
                self.busy = False
        return True

    def _execute(self, row: DBTaskResult, using: str) -> None:
        with metrics.collect() as counted:  # one log line per task carries its metrics (EMF)
            self._run(row, using)
        logger.info("task %s run", row.id, extra=(metrics.documents(counted) or [{}])[0])

    def _run(self, row: DBTaskResult, using: str) -> None:
        args = row.args_kwargs
        try:
            with transaction.atomic(using=using):
                value = row.task.call(*args["args"], **args["kwargs"])
        except Exception as exc:
            metrics.incr("EmailsFailed")
            self.failures_in_row += 1
            self._failed(row, exc)
        else:
            metrics.incr("EmailsSent", int(value == "sent"))  # 0 when skipped (erased, blocked)
            self.failures_in_row = 0
            row.set_successful(value)
            self.counts["done"] += 1

    def _failed(self, row: DBTaskResult, exc: Exception) -> None:
        # The exception's class only in the log: its message may quote an address. The row keeps the
        # traceback for staff, and erasure deletes the row.
        attempts = len(row.worker_ids)
        if attempts >= settings.EMAIL_MAX_ATTEMPTS:
            row.set_failed(exc)
            self.counts["failed"] += 1
            logger.error("task %s failed for good after %d attempts (%s)", row.id, attempts, exc.__class__.__name__)
            return
        delay = backoff(attempts)
        row.status, row.run_after = "READY", timezone.now() + timedelta(seconds=delay)
        row.exception_class_path = f"{type(exc).__module__}.{type(exc).__qualname__}"
        row.traceback = "".join(traceback.format_exception(exc))
        row.save(update_fields=["status", "run_after", "exception_class_path", "traceback"])
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
        try:
            worker.run()
        finally:
            counts = worker.counts
            logger.info("worker %s stopped: %d done, %d to retry, %d failed", worker.worker_id, counts["done"],
                        counts["retried"], counts["failed"])  # fmt: skip
