"""The public API's and the outgoing webhooks' tables: events (the outbox), endpoints, deliveries, attempts.

An Event holds no personal data, only what happened to which signup id and when: the person's fields are read
at delivery time, so an erased person's pending deliveries carry nothing of them (api/payloads.py).
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone

from api import crypto

ROTATION_OVERLAP = timedelta(hours=24)  # both secrets sign this long after a rotation
EVENT_TYPES = ["signup.created", "signup.confirmed", "signup.withdrawn", "signup.erased", "signup.bounced"]


def new_secret() -> str:
    """Return a Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EncryptedSecretField(models.TextField):
    """A secret stored encrypted (api/crypto.py): Python sees the plain value, the column a Fernet token.

    Not for lookups: each encryption of the same value differs. An empty value stays empty (no secret)."""

    def from_db_value(self, value, expression, connection):
        return crypto.decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, crypto.Undecryptable):
            return value.token  # written back as it was read: a key may come back
        return crypto.encrypt(value) if value else value


class Event(models.Model):
    """One change to a signup, written in the same transaction as the change (api/events.py)."""

    CREATED, CONFIRMED, WITHDRAWN, ERASED, BOUNCED = EVENT_TYPES
    TYPES = [(t, t) for t in EVENT_TYPES]

    # The id is the feed's cursor (GET /api/v1/events?after=<id>) and the webhook message id (msg_<id>).
    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32, choices=TYPES)
    # A plain number, not a foreign key: the event outlives nothing personal and never blocks a delete.
    signup_id = models.BigIntegerField(db_index=True)
    at = models.DateTimeField(default=timezone.now)
    # False until the worker has made one Delivery per subscribed endpoint (api/delivery.py fan_out).
    fanned_out = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="api_event_to_fan_out", condition=models.Q(fanned_out=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.signup_id} (event {self.pk})"


class Endpoint(models.Model):
    """A URL that receives the events it subscribes to, signed with its secret (Standard Webhooks 1.0)."""

    url = models.URLField(max_length=2000, help_text="https://…; its host must resolve to public addresses.")
    description = models.CharField(max_length=200, blank=True)
    # whsec_<base64>: the HMAC key is the base64-decoded part. The receiver needs it as is, so it cannot be
    # hashed: it is encrypted at rest instead (WEBHOOK_SECRET_KEYS), and shown once, at creation and rotation.
    secret = EncryptedSecretField(default=new_secret)
    # The secret before the last rotation: deliveries carry both signatures until previous_secret_until.
    previous_secret = EncryptedSecretField(blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event type.")
    # Granted signups:read: payloads carry the person's fields; otherwise thin payloads (type, id, time).
    full_payload = models.BooleanField("granted signups:read (person's fields in the payload)", default=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # First failure since the last success: an endpoint failing for WEBHOOK_DISABLE_AFTER_HOURS is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def rotate_secret(self, using: str | None = None) -> str:
        """Give the endpoint a new secret (the old one signs too for ROTATION_OVERLAP), save it and return it."""
        self.previous_secret, self.secret = self.secret, new_secret()
        self.previous_secret_until = timezone.now() + ROTATION_OVERLAP
        self.save(using=using, update_fields=["previous_secret", "secret", "previous_secret_until"])
        return self.secret

    def clean(self) -> None:
        from api import ssrf  # ssrf imports nothing of ours; late only so the model module stays small

        ssrf.check_url_for_save(self.url)


class Delivery(models.Model):
    """One event for one endpoint: tried until it succeeds or its schedule runs out (api/delivery.py)."""

    PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
    STATUSES = [(s, s) for s in (PENDING, RUNNING, SUCCEEDED, FAILED)]

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A RUNNING delivery whose worker died is taken again once this passes (longer than a request's timeout).
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="api_delivery_once")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="api_delivery_due", condition=models.Q(status="pending")),
            models.Index(fields=["leased_until"], name="api_delivery_leased", condition=models.Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk}: event {self.event_id} to endpoint {self.endpoint_id}"


class Attempt(models.Model):
    """One HTTP request of a delivery, for the delivery log: never the payload, a short excerpt of the answer."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    latency_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    # The exception's class (timeout, refused address), never its message.
    error = models.CharField(max_length=200, blank=True, default="")
    # The receiver's answer, cut to 200 characters (api/delivery.py EXCERPT): what it said, not what we sent.
    response_excerpt = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} ({self.status_code or self.error})"


SCOPES = ["signups:read", "signups:write", "signups:erase", "events:read", "webhooks:manage"]


class ApiKey(models.Model):
    """A key for /api/v1/: created by a superuser in the admin and shown once; only its hash is kept (api/keys.py)."""

    name = models.CharField(max_length=100, help_text="Who or what uses it (e.g. 'CRM sync').")
    # The first characters of the key ("sgk_" and 8 more): shown in lists and logs, the hash's lookup.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    # SHA-256 of the whole key: the key has 256 random bits, so a fast hash is enough (no password stretching).
    hashed = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text=f"Any of: {', '.join(SCOPES)}.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # PROTECT: the erasures a key makes are recorded under its creator (users/erasure.py takes a user).
    created_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiAudit(models.Model):
    """One API call that returned or changed personal data: which key, what, how many rows (like SignupExport)."""

    key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    key_prefix = models.CharField(max_length=16)  # still says which key when the key row is gone
    action = models.CharField(max_length=20)  # list, read, create, withdraw, erase
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # The query's filters or {"id": n}: never an address or a name.
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.key_prefix} {self.action} ({self.row_count})"


class IdempotentRequest(models.Model):
    """An `Idempotency-Key` seen on a create: a retry with the same key gets the first answer again."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=200)
    # SHA-256 of the request body: the same key with another body is refused (422), never applied.
    body_hash = models.CharField(max_length=64)
    # Empty while the first request is being handled (a concurrent retry gets 409).
    response_status = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "idempotency_key"], name="api_idempotency_once")]

    def __str__(self) -> str:
        return f"idempotency key {self.pk} ({self.response_status or 'in progress'})"
