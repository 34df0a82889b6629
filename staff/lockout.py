"""The login lockout per username, whatever the addresses: beside django-axes' per-(IP, username) one.

django-axes locks an (IP, username) pair after AXES_FAILURE_LIMIT failures; spraying one username from many
addresses is not capped by it. This counts the same failures (axes' AccessAttempt rows, read on the primary)
for the username across every address within AXES_COOLOFF_TIME, and refuses its sign-in from
STAFF_USERNAME_FAILURE_LIMIT on. The limit is higher than axes': anyone may spend it, and then the owner is
locked out too until the cool-off has passed (or `manage.py axes_reset_username USER`).
"""

from __future__ import annotations

import logging

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

logger = logging.getLogger("staff")


def username_locked(username: str) -> bool:
    """Say whether sign-in as `username` failed STAFF_USERNAME_FAILURE_LIMIT times within the cool-off."""
    if not username:
        return False
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    attempts = AccessAttempt.objects.filter(username=username, attempt_time__gt=since)
    failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
    if failures < settings.STAFF_USERNAME_FAILURE_LIMIT:
        return False
    logger.warning("staff sign-in refused: %d failures for one username from %d addresses within the cool-off",
                   failures, attempts.values("ip_address").distinct().count())  # fmt: skip
    return True
