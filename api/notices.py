"""What the superusers are told about webhooks: an endpoint the worker disabled. Sent by the queue worker.

1. Who: every active superuser with an address and a confirmed second factor (an enrolled authenticator, or
   backup codes): the people who can open the endpoint's admin page and enable it again.
2. When: queued in the transaction that disables the endpoint (api/delivery.py: failing for DISABLE_AFTER, or a
   410 Gone), one task per recipient on the email queue, as staff notices are (staff/tasks.py), so a rolled-back
   disable sends nothing and a committed one is retried until sent.
3. What: the endpoint (its id, description and URL without the query string, which may hold a token), the
   reason, the last status, and a link to its admin page. Nothing about any person: the queue holds ids, the
   reason and a status code or exception class.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db.models import Q
from django.template.loader import render_to_string

from api.models import Endpoint

SUBJECT = "Webhooks: endpoint {pk} was disabled"


def recipients() -> list[int]:
    """Return the ids of the superusers to tell: active, with an address and a confirmed second factor."""
    factor = Q(totpdevice__confirmed=True) | Q(staticdevice__confirmed=True)
    users = get_user_model().objects.filter(factor, is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("pk", flat=True)))


def shown_url(url: str) -> str:
    """Return the URL without its query string and fragment (a receiver's token may be in them)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (" (query string left out)" if parts.query else "")


def send_endpoint_disabled(recipient_id: int, endpoint_id: int, reason: str, last_status: str, at: str) -> str:
    """Email one superuser that endpoint `endpoint_id` was disabled; return "sent" or why not."""
    recipient = get_user_model().objects.filter(pk=recipient_id, is_active=True, is_superuser=True).first()
    if recipient is None or not recipient.email:
        return "no address"
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return "gone"
    admin_url = f"{settings.STAFF_BASE_URL}/{settings.ADMIN_URL}api/endpoint/{endpoint.pk}/change/"
    ctx = {"endpoint": endpoint, "url": shown_url(endpoint.url), "reason": reason, "last_status": last_status,
           "at": at, "admin_url": admin_url, "site": settings.SITE_NAME}  # fmt: skip
    body = render_to_string("api/email/endpoint_disabled.txt", ctx)
    EmailMessage(SUBJECT.format(pk=endpoint.pk), body, settings.DEFAULT_FROM_EMAIL, [recipient.email]).send()
    return "sent"
