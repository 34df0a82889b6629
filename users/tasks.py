"""The queue: django-tasks with its database backend (django-tasks-db); `manage.py worker` runs it.

1. A task row is the outbox entry: it is written with the ORM in the caller's transaction (the database
   backend has no on-commit deferral), so a signup and its email commit or vanish together.
2. A task names a signup and a kind of email, never an address or a name: the email is rendered from
   the row when it is sent, so an erased person's queued email has nothing left to say (and is deleted).
3. Retries, back-off and crash safety are the worker's (users/management/commands/worker.py).
"""

from __future__ import annotations

import functools

from django_tasks import task
from django_tasks_db import signal_handlers
from django_tasks_db.models import DBTaskResult

EMAIL_QUEUE = "email"


@task(queue_name=EMAIL_QUEUE)
def send_email(signup_id: int, kind: str) -> str:
    """Send email `kind` (users.emails.KINDS) to signup `signup_id`; return what happened."""
    from users import emails

    return emails.send(signup_id, kind)


def enqueue_email(signup_id: int, kind: str) -> None:
    """Queue an email in the current transaction (call it inside the one that makes it necessary)."""
    send_email.enqueue(signup_id=signup_id, kind=kind)


def table() -> str:
    return DBTaskResult._meta.db_table


@functools.cache
def email_insert_parts(connection, *, signup_id_sql: str, kind_sql: str) -> tuple[str, str, list]:
    """Return columns, value expressions and parameters to INSERT email rows from a query's (id, kind).

    The row is what `send_email.enqueue(signup_id=..., kind=...)` writes, built from the library's own model
    (its defaults and pre-save rules), with the id, the arguments and the time computed in SQL, so the
    signup's INSERT, its event and its email travel in one statement (users.models.SignupQuerySet.signup).
    Nothing else in the row changes between calls: built once per connection.
    """
    from users.models import _insert_parts

    backend = send_email.get_backend()
    proto = DBTaskResult(
        id=None,
        args_kwargs={},
        priority=send_email.priority,
        task_path=send_email.module_path,
        queue_name=send_email.queue_name,
        run_after=send_email.run_after,
        backend_name=backend.alias,
    )
    signal_handlers.set_run_after(DBTaskResult, proto)  # what the library's pre_save handler does
    kwargs = f"jsonb_build_object('signup_id', {signup_id_sql}, 'kind', {kind_sql})"
    args = f"jsonb_build_object('args', '[]'::jsonb, 'kwargs', {kwargs})"
    overrides = {"id": "gen_random_uuid()", "args_kwargs": args, "enqueued_at": "statement_timestamp()"}
    return _insert_parts(proto, connection, overrides)


def email_tasks(signup_id: int | None = None, *, using: str = "default"):
    """Return the queue's email rows, all of them or one signup's."""
    rows = DBTaskResult.objects.using(using).filter(task_path=send_email.module_path)
    return rows if signup_id is None else rows.filter(args_kwargs__kwargs__signup_id=signup_id)


def forget_signup(signup_id: int, *, using: str) -> int:
    """Delete every queued or finished email of this signup (erasure); return how many rows went."""
    deleted, _ = email_tasks(signup_id, using=using).delete()
    return deleted
