"""The API's email on the queue (django-tasks, the email queue `manage.py worker` runs): written in the
transaction that disables an endpoint, sent and retried by the worker. Arguments hold no personal data."""

from __future__ import annotations

from django_tasks import task

from api import notices

EMAIL_QUEUE = "email"  # users.tasks.EMAIL_QUEUE: the one queue the worker runs


@task(queue_name=EMAIL_QUEUE)
def send_endpoint_disabled(recipient_id: int, endpoint_id: int, reason: str, last_status: str, at: str) -> str:
    return notices.send_endpoint_disabled(recipient_id, endpoint_id, reason, last_status, at)
