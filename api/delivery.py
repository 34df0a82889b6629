"""Deliver events to endpoints, run by `manage.py worker` (its delivery threads) — never lost, never stuck.

1. Fan out: in one short transaction, take events not yet fanned out (FOR UPDATE SKIP LOCKED), add one
   Delivery per enabled endpoint that wants the type, and mark them fanned out.
2. Claim: in one short transaction, take a due pending delivery of an enabled endpoint, or a running one whose
   lease ran out (its worker died: SIGKILL, a lost host); mark it running with a new lease and count the
   attempt, and commit. Several threads and processes claim side by side (SKIP LOCKED).
3. Send with no transaction open: resolve and check the host (api/ssrf.py), connect to that checked address
   (no second lookup: DNS rebinding), POST the body signed per Standard Webhooks (api/signing.py; the
   previous secret signs too during a rotation), with WEBHOOK_TIMEOUT_SECONDS, never following a redirect.
4. Record: an Attempt row (status, latency, code, the answer's first 200 characters) and the outcome, only if
   the lease is still this claim's. 2xx: succeeded. 410 Gone: failed, and the endpoint disabled. Anything
   else (another code, a timeout, a refused address): the endpoint is disabled when it has had no success for
   DISABLE_AFTER (3 days); the delivery is tried again on the Standard Webhooks schedule
   (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, x WEBHOOK_RETRY_SCALE, +0-20 % jitter), later if the answer's
   Retry-After asks (up to a day); after the last, failed. An admin may replay any delivery (api/admin.py).
   A disabled endpoint is logged and its superusers emailed, through the queue in that same transaction
   (api/notices.py).
5. The message id (webhook-id) is msg_<event id>: the same on every retry and replay, so a receiver
   de-duplicates; a worker killed after the receiver answered but before recording sends it again.
6. Kept QUEUE_KEEP_DAYS: finished deliveries (their attempts with them), events and idempotency keys older
   than that are deleted by `prune` (run by the worker every QUEUE_PRUNE_SECONDS, in batches).
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import ssl
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from api import notices, payloads, signing, ssrf, tasks
from api.models import Attempt, Delivery, Endpoint, Event, IdempotentRequest

logger = logging.getLogger("api.delivery")

SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]  # seconds before attempt n+1 (Standard Webhooks)
LEASE_MARGIN = 15.0  # seconds beyond the request timeout before a running delivery counts as abandoned
EXCERPT = 200
MAX_RETRY_AFTER = 86400
DISABLE_AFTER = timedelta(days=3)  # an endpoint with no success for this long is disabled (staff re-enable it)
FAILING = "no successful delivery for 3 days"
GONE = "the receiver answered 410 Gone"


def fan_out(using: str, limit: int = 500) -> int:
    """Make the deliveries of up to `limit` new events; return how many events were fanned out."""
    with transaction.atomic(using=using):
        batch = list(Event.objects.using(using).filter(fanned_out=False).order_by("id")
                     .select_for_update(skip_locked=True)[:limit])  # fmt: skip
        if not batch:
            return 0
        endpoints = list(Endpoint.objects.using(using).filter(enabled=True).only("pk", "event_types"))  # no secret
        rows = [Delivery(endpoint=e, event=ev) for ev in batch for e in endpoints if e.wants(ev.type)]
        Delivery.objects.using(using).bulk_create(rows, ignore_conflicts=True)
        Event.objects.using(using).filter(pk__in=[ev.pk for ev in batch]).update(fanned_out=True)
    return len(batch)


def claim(using: str) -> Delivery | None:
    """Take one due delivery (or an abandoned one) and commit the claim; None when there is none."""
    now = timezone.now()
    rows = Delivery.objects.using(using).select_related("endpoint", "event").filter(endpoint__enabled=True)
    with transaction.atomic(using=using):
        abandoned = rows.filter(status=Delivery.RUNNING, leased_until__lt=now).order_by("leased_until")
        due = rows.filter(status=Delivery.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")
        row = (abandoned.select_for_update(skip_locked=True, of=("self",)).first()
               or due.select_for_update(skip_locked=True, of=("self",)).first())  # fmt: skip
        if row is None:
            return None
        row.status, row.attempts = Delivery.RUNNING, row.attempts + 1
        row.leased_until = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN)
        row.save(using=using, update_fields=["status", "attempts", "leased_until"])
    return row


def run_one(using: str | None = None) -> bool:
    """Fan out new events, then deliver one due delivery; say whether there was work."""
    using = using or router.db_for_write(Delivery)
    fanned = fan_out(using)
    row = claim(using)
    if row is None:
        return bool(fanned)
    deliver(row, using)
    return True


def deliver(row: Delivery, using: str) -> None:
    """Send one claimed delivery and record the attempt and its outcome."""
    endpoint = row.endpoint
    if not endpoint.secret:  # no key of WEBHOOK_SECRET_KEYS opens it (api/crypto.py): never send it unsigned
        logger.error("webhook endpoint %s: its secret cannot be decrypted with WEBHOOK_SECRET_KEYS", endpoint.pk)
        _record(row, using, code=None, error="secret cannot be decrypted (WEBHOOK_SECRET_KEYS)", excerpt="",
                latency=0, retry_after=None)  # fmt: skip
        return
    body = payloads.body(row.event, full=endpoint.full_payload, using=using)
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > timezone.now():
        secrets.append(endpoint.previous_secret)
    headers = signing.headers(secrets, f"msg_{row.event_id}", int(time.time()), body)
    started = time.monotonic()
    code, excerpt, error, retry_after = None, "", "", None
    try:
        code, excerpt, retry_after = post(endpoint.url, body, headers)
    except ssrf.Refused as exc:
        error = f"refused: {exc}"[:200]
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, TLS, a garbled answer
        error = exc.__class__.__name__
    latency = int((time.monotonic() - started) * 1000)
    _record(row, using, code=code, error=error, excerpt=excerpt, latency=latency, retry_after=retry_after)


def post(url: str, body: bytes, headers: dict) -> tuple[int, str, float | None]:
    """POST to the checked address of `url`; return (status, the answer's first characters, Retry-After)."""
    host, port, addresses = ssrf.resolve(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    if parts.scheme == "https":
        conn = _PinnedHTTPS(host, port, addresses=addresses, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = _PinnedHTTP(host, port, addresses=addresses, timeout=timeout)
    try:  # each socket operation waits at most `timeout`; the answer's body read is cut to EXCERPT * 4 bytes
        conn.request("POST", target, body=body, headers={**headers, "Content-Type": "application/json",
                                                         "User-Agent": "signups-webhooks/1"})  # fmt: skip
        response = conn.getresponse()
        raw = response.read(EXCERPT * 4)
        excerpt = "".join(c if c.isprintable() else " " for c in raw.decode("utf-8", "replace"))[:EXCERPT]
        return response.status, excerpt, _retry_after(response.getheader("Retry-After"))
    finally:
        conn.close()


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """Connect to the first of the checked addresses that answers (never a second DNS lookup)."""
    error: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    """Connect to an address the SSRF guard checked; the Host header still names the host."""

    def __init__(self, host: str, port: int, *, addresses: list[str], **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, addresses: list[str], **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # the certificate names the host


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value) if value.strip().isdigit() else (
            parsedate_to_datetime(value) - timezone.now()).total_seconds()  # fmt: skip
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def next_delay(attempts: int, retry_after: float | None = None) -> float | None:
    """Return seconds before the next attempt after `attempts` failed ones, or None when the schedule is done."""
    if attempts >= len(SCHEDULE):
        return None
    delay = SCHEDULE[attempts] * settings.WEBHOOK_RETRY_SCALE * random.uniform(1.0, 1.2)
    return max(delay, retry_after or 0.0)


def _record(row: Delivery, using: str, *, code, error: str, excerpt: str, latency: int, retry_after) -> None:
    now = timezone.now()
    mine = Delivery.objects.using(using).filter(pk=row.pk, status=Delivery.RUNNING, leased_until=row.leased_until)
    endpoint = Endpoint.objects.using(using).filter(pk=row.endpoint_id)
    with transaction.atomic(using=using):
        Attempt.objects.using(using).create(delivery_id=row.pk, at=now, latency_ms=latency, status_code=code,
                                            error=error, response_excerpt=excerpt)  # fmt: skip
        if code is not None and 200 <= code < 300:
            mine.update(status=Delivery.SUCCEEDED, delivered_at=now, last_status_code=code, leased_until=None)
            endpoint.filter(failing_since__isnull=False).update(failing_since=None)
            return
        endpoint.filter(failing_since__isnull=True).update(failing_since=now)
        gone = code == 410
        reason = GONE if gone else FAILING
        if endpoint.filter(Q() if gone else Q(failing_since__lt=now - DISABLE_AFTER), enabled=True).update(
            enabled=False, disabled_reason=reason
        ):
            _disabled(row.endpoint_id, reason, f"HTTP {code}" if code else error, now)
        if gone:
            mine.update(status=Delivery.FAILED, last_status_code=code, leased_until=None)
            return
        delay = next_delay(row.attempts, retry_after)
        if delay is None:
            mine.update(status=Delivery.FAILED, last_status_code=code, leased_until=None)
            logger.error("delivery %s failed for good after %d attempts", row.pk, row.attempts)
            return
        mine.update(status=Delivery.PENDING, last_status_code=code, leased_until=None,
                    next_attempt_at=now + timedelta(seconds=delay))  # fmt: skip
    logger.info("delivery %s attempt %d: %s, retry in %.0f s", row.pk, row.attempts, code or error, delay)


def _disabled(endpoint_id: int, reason: str, last_status: str, now) -> None:
    """Log a disabled endpoint and queue the superusers' emails (in the transaction that disabled it)."""
    logger.error("webhook endpoint %s disabled: %s (last: %s)", endpoint_id, reason, last_status)
    at = now.strftime("%Y-%m-%d %H:%M:%S")
    for recipient_id in notices.recipients():
        tasks.send_endpoint_disabled.enqueue(recipient_id=recipient_id, endpoint_id=endpoint_id, reason=reason,
                                             last_status=last_status, at=at)  # fmt: skip


def replay(pk: int, using: str) -> bool:
    """Send delivery `pk` again as soon as a worker is free (same message id); False when it is running."""
    rows = Delivery.objects.using(using).filter(pk=pk).filter(~Q(status=Delivery.RUNNING))
    return bool(rows.update(status=Delivery.PENDING, next_attempt_at=timezone.now()))


def prune(keep_days: int, using: str, batch: int = 5000) -> int:
    """Delete finished deliveries, events and idempotency keys older than `keep_days`; return rows deleted."""
    before = timezone.now() - timedelta(days=keep_days)
    finished = Delivery.objects.using(using).filter(status__in=[Delivery.SUCCEEDED, Delivery.FAILED],
                                                    created_at__lt=before)  # fmt: skip
    unsent = Delivery.objects.using(using).filter(status__in=[Delivery.PENDING, Delivery.RUNNING])
    events = (
        Event.objects.using(using).filter(at__lt=before, fanned_out=True).exclude(pk__in=unsent.values("event_id"))
    )  # an event still being delivered stays, whatever its age
    deleted = 0
    for rows in (finished, events, IdempotentRequest.objects.using(using).filter(created_at__lt=before)):
        while pks := list(rows.values_list("pk", flat=True)[:batch]):
            deleted += rows.model.objects.using(using).filter(pk__in=pks).delete()[0]
    return deleted
