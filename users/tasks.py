"""The queue: django-tasks with its database backend (django-tasks-db); `manage.py worker` runs it.

1. A task row is the outbox entry: it is written with the ORM in the caller's transaction (the database
   backend has no on-commit deferral), so a signup and its email commit or vanish together.
2. A task names a signup and a kind of email, never an address or a name: the email is rendered from
   the row when it is sent, so an erased person's queued email has nothing left to say (and is deleted).
3. Retries, back-off, leases and crash safety are the worker's (users/management/commands/worker.py); a
   failed row keeps the exception's class and the traceback's frames, never its message (`safe_traceback`).
4. A person's rows are found through the expression index users_tasks_signup_id_idx on SIGNUP_ID (migration
   0008): erasure, the purge and staff resend never scan the table, however many rows it holds.
5. Finished rows go after QUEUE_KEEP_DAYS (`prune`, run by the worker every QUEUE_PRUNE_SECONDS), in
   batches through the partial index users_tasks_finished_idx, so the table stays small.
6. The erasure ledger's entries (write_tombstone, users/tombstones.py) go through the same queue and worker:
   queued in the erasure's transaction, written to S3 (or the local folder) afterwards; a failed write is
   retried with the same back-off, and never given up (the worker's RETRY_FOREVER).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from datetime import timedelta

from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

EMAIL_QUEUE = "email"
# Exactly the indexed expression (migration 0008): a parameterised JSON lookup would not match the index.
SIGNUP_ID = "((args_kwargs -> 'kwargs') ->> 'signup_id')"
FINISHED = ("SUCCESSFUL", "FAILED")


@task(queue_name=EMAIL_QUEUE)
def write_tombstone(name: str, entry: dict) -> str:
    """Write erasure ledger entry `name` (users.tombstones); raise LedgerUnavailable to be tried again."""
    from users import tombstones

    return tombstones.write(name, entry)


def enqueue_tombstone(name: str, entry: dict) -> None:
    """Queue a ledger entry in the current transaction (the erasure's)."""
    write_tombstone.enqueue(name=name, entry=entry)


@task(queue_name=EMAIL_QUEUE)
def send_email(signup_id: int, kind: str) -> str:
    """Send email `kind` (users.emails.KINDS) to signup `signup_id`; return what happened."""
    from users import emails

    return emails.send(signup_id, kind)


def enqueue_email(signup_id: int, kind: str, *, run_after=None) -> None:
    """Queue an email in the current transaction (call it inside the one that makes it necessary)."""
    (send_email.using(run_after=run_after) if run_after else send_email).enqueue(signup_id=signup_id, kind=kind)


def table() -> str:
    return DBTaskResult._meta.db_table


def email_tasks(signup_id: int | None = None, *, using: str = "default") -> QuerySet:
    """Return the queue's email rows, all of them or one signup's."""
    rows = DBTaskResult.objects.using(using).filter(task_path=send_email.module_path)
    return rows if signup_id is None else email_tasks_of([signup_id], using=using)


def email_tasks_of(signup_ids: Iterable[int], *, using: str = "default") -> QuerySet:
    """Return the email rows of these signups, found through the signup id index."""
    ids = [str(int(pk)) for pk in signup_ids]
    rows = DBTaskResult.objects.using(using).filter(task_path=send_email.module_path)
    return rows.alias(signup_key=RawSQL(SIGNUP_ID, ())).filter(signup_key__in=ids)  # noqa: S611 - a constant


def forget_signup(signup_id: int, *, using: str) -> int:
    """Delete every queued or finished email of this signup (erasure); return how many rows went."""
    deleted, _ = email_tasks(signup_id, using=using).delete()
    return deleted


def prune(*, keep_days: int, batch: int = 5000, using: str = "default") -> int:
    """Delete finished rows older than `keep_days`, `batch` at a time (each a short statement); return how many."""
    before = timezone.now() - timedelta(days=keep_days)
    sql = (
        f"DELETE FROM {table()} WHERE id IN (SELECT id FROM {table()} WHERE status = ANY(%s)"  # noqa: S608
        " AND finished_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)"
    )
    total = 0
    with connections[using].cursor() as cursor:
        while True:
            cursor.execute(sql, [list(FINISHED), before, batch])
            total += cursor.rowcount
            if cursor.rowcount < batch:
                return total


def safe_traceback(exc: BaseException) -> str:
    """Return the traceback's frames and the exception's class, never its message (it may quote an address)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"Traceback (most recent call last):\n{frames}{kind} (message withheld: it may hold personal data)\n"
