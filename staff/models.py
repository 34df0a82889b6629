"""Enrolment invitations: the only way to enrol an authenticator without a verified session (staff/enrolment.py)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

LINK_SALT = "staff.enrolment.invite"


class InviteQuerySet(models.QuerySet):
    def live(self):
        """Invitations not used yet and not expired."""
        return self.filter(used_at__isnull=True, expires_at__gt=timezone.now())


class EnrolmentInvite(models.Model):
    """A single-use, expiring link that lets one staff account enrol an authenticator app."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Random per invitation; the link carries HMAC(SECRET_KEY, id:nonce:user): the table alone opens nothing,
    # and the link can be built again from the row when the queued email is sent (the queue holds only the id).
    nonce = models.CharField(max_length=64, default=secrets.token_hex)
    created_by = models.CharField(max_length=150)  # the superuser's username, or "manage.py"
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Set once, by the first use of the link (a conditional UPDATE: two uses cannot both win).
    used_at = models.DateTimeField(null=True, blank=True)

    objects = InviteQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "used_at"])]

    def __str__(self) -> str:
        return f"enrolment invitation {self.pk} for {self.user_id}"

    def token(self) -> str:
        return f"{self.pk}-{self._signature()}"

    def path(self) -> str:
        return reverse("admin:second_factor_enrol_link", args=[self.token()])

    def matches(self, signature: str) -> bool:
        return constant_time_compare(signature, self._signature())

    def _signature(self) -> str:
        return salted_hmac(LINK_SALT, f"{self.pk}:{self.nonce}:{self.user_id}", algorithm="sha256").hexdigest()
