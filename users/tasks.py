"""The queue: django-tasks with its database backend (django-tasks-db); `manage.py worker` runs it.

1. A task row is the outbox entry: it is written with the ORM in the caller's transaction (the database
   backend has no on-commit deferral), so a signup and its email commit or vanish together.
2. A task names a signup and a kind of email, never an address or a name: the email is rendered from
   the row when it is sent, so an erased person's queued email has nothing left to say (and is deleted).
3. Retries, back-off and crash safety are the worker's (users/management/commands/worker.py).
"""

from __future__ import annotations

from django_tasks import task
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


def email_tasks(signup_id: int | None = None, *, using: str = "default"):
    """Return the queue's email rows, all of them or one signup's."""
    rows = DBTaskResult.objects.using(using).filter(task_path=send_email.module_path)
    return rows if signup_id is None else rows.filter(args_kwargs__kwargs__signup_id=signup_id)


def forget_signup(signup_id: int, *, using: str) -> int:
    """Delete every queued or finished email of this signup (erasure); return how many rows went."""
    deleted, _ = email_tasks(signup_id, using=using).delete()
    return deleted
