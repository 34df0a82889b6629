"""SES bounces and complaints, delivered by SNS to POST /webhooks/ses/: an address that bounced for good or
complained gets no more email (users.emails skips rows with email_blocked_at), and staff see why.

1. Only a genuine, fresh SNS message of our topic is acted on (users.sns). A forgery answers 403 (SNS never
   retries a 4xx, and only a forgery gets one); anything that may pass later (a certificate fetch that timed
   out, the database unavailable) answers 503 with Retry-After, so SNS delivers it again (the topic's
   delivery policy, then its dead-letter queue: infra/terraform/ses.tf). Never a 500.
2. Each Notification's MessageId is recorded (users.models.SnsMessage) in the transaction that applies it:
   a replay, or SNS delivering twice, is acknowledged and changes nothing. Ids older than twice
   SNS_MAX_AGE_SECONDS are forgotten as new ones arrive (older messages are refused by their Timestamp).
3. SubscriptionConfirmation: confirmed by fetching its SubscribeURL (only from an SNS host).
4. Notification holding an SES event (event publishing's eventType or notifications' notificationType):
   - Bounce with bounceType Permanent: each bounced recipient's signups are blocked ("bounce: <subtype>");
     Transient bounces (full mailbox, greylisting) block nothing: SES retried already, a later mail may pass.
   - Complaint: each complaining recipient's signups are blocked ("complaint: <feedback type>").
   - Anything else (Delivery, Send, SES's topic test message) is acknowledged and ignored.
5. Addresses match case-insensitively through the lower(email) unique index; the first block wins (its
   time and reason stay). Logs carry counts and event types, never an address.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, router, transaction
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from api import events
from api.models import Event
from users import sns
from users.models import Signup, SnsMessage

logger = logging.getLogger("users.webhooks")


@csrf_exempt  # SNS cannot send a CSRF token; the signature is the proof
@require_POST
def ses_events(request: HttpRequest) -> HttpResponse:
    """Receive one SNS message about SES sending events."""
    try:
        message = sns.parse(request.body)
        sns.verify(message)
        if message["Type"] == "SubscriptionConfirmation":
            sns.confirm_subscription(message)
            logger.info("ses events: subscription confirmed")
            return HttpResponse("confirmed", content_type="text/plain")
        if message["Type"] != "Notification":
            return HttpResponse("ignored", content_type="text/plain")
        outcome = _apply_once(message)
    except sns.InvalidMessage as exc:
        logger.warning("ses events: message refused (%s)", exc)
        return HttpResponse("refused", status=403, content_type="text/plain")
    except (sns.Unavailable, DatabaseError, psycopg.Error) as exc:
        logger.warning("ses events: not handled now, SNS will retry (%s)", _safe(exc.__class__.__name__))
        response = HttpResponse("try again", status=503, content_type="text/plain")
        response["Retry-After"] = "20"
        return response
    return HttpResponse(outcome, content_type="text/plain")


def _apply_once(message: dict) -> str:
    """Apply a verified Notification unless its MessageId was applied already; say which."""
    using = router.db_for_write(SnsMessage)
    with transaction.atomic(using=using):
        _, created = SnsMessage.objects.using(using).get_or_create(message_id=message["MessageId"][:100])
        if not created:
            logger.info("ses events: message already applied, ignored")
            return "duplicate"
        forget = timezone.now() - timedelta(seconds=2 * settings.SNS_MAX_AGE_SECONDS)
        SnsMessage.objects.using(using).filter(received_at__lt=forget).delete()
        return f"ok {_handle_event(message.get('Message', ''))}"


def _handle_event(body: str) -> int:
    """Apply one SES event; return how many signups were newly blocked."""
    try:
        event = json.loads(body)
    except ValueError:
        event = None  # e.g. "Successfully validated SNS topic for Amazon SES event publishing."
    if not isinstance(event, dict):
        logger.info("ses events: non-event notification ignored")
        return 0
    kind = event.get("eventType") or event.get("notificationType")
    detail = event.get(str(kind).lower())
    if not isinstance(detail, dict):
        logger.info("ses events: %s ignored", _safe(kind))
        return 0
    if kind == "Bounce" and detail.get("bounceType") == "Permanent":
        reason, recipients = f"bounce: {_safe(detail.get('bounceSubType'))}", detail.get("bouncedRecipients")
    elif kind == "Complaint":
        reason = f"complaint: {_safe(detail.get('complaintFeedbackType'))}"
        recipients = detail.get("complainedRecipients")
    else:
        logger.info("ses events: %s %s ignored", _safe(kind), _safe(detail.get("bounceType")))
        return 0
    addresses = _addresses(recipients)
    blocked = block(addresses, reason)
    logger.info("ses events: %s for %d recipient(s), %d signup(s) blocked", reason, len(addresses), blocked)
    return blocked


def block(addresses: list[str], reason: str) -> int:
    """Stop all email to these addresses (any case); return how many signups were newly blocked."""
    if not addresses:
        return 0
    using = router.db_for_write(Signup)
    rows = (
        Signup.objects.using(using)
        .alias(email_lower=Lower("email"))
        .filter(email_lower__in=[a.lower() for a in addresses], email_blocked_at__isnull=True)
    )
    with transaction.atomic(using=using):  # the block and its events (api/: webhooks, events feed) together
        pks = list(rows.select_for_update().values_list("pk", flat=True))
        blocked = (
            Signup.objects.using(using)
            .filter(pk__in=pks)
            .update(email_blocked_at=timezone.now(), email_blocked_reason=reason[:200])
        )
        events.record(Event.BOUNCED, pks, using=using)
    return blocked


def _addresses(recipients) -> list[str]:
    if not isinstance(recipients, list):
        return []
    found = (r.get("emailAddress") for r in recipients if isinstance(r, dict))
    return [a.strip() for a in found if isinstance(a, str) and "@" in a and len(a) <= 320]


def _safe(value) -> str:
    """An SES type word for a log line or reason (never free text that could hold an address)."""
    text = str(value or "unknown")
    return text if text.isascii() and text.replace("-", "").replace("_", "").isalnum() else "other"
