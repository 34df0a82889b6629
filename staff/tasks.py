"""Staff email on the queue (django-tasks, the email queue `manage.py worker` runs): written in the transaction
that makes it necessary, sent and retried by the worker. Arguments are ids and a staff username only."""

from __future__ import annotations

from django_tasks import task

from staff import mail

EMAIL_QUEUE = "email"  # users.tasks.EMAIL_QUEUE: the one queue the worker runs


@task(queue_name=EMAIL_QUEUE)
def send_enrolment_link(invite_id: int) -> str:
    return mail.send_enrolment_link(invite_id)


@task(queue_name=EMAIL_QUEUE)
def send_notice(recipient_id: int, event: str, username: str, at: str) -> str:
    return mail.send_notice(recipient_id, event, username, at)
