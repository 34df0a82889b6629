"""The public count of confirmed people, cache-aside: read Redis, on a miss count in the database and store.

Only confirmed addresses count (double opt-in), and not once consent was withdrawn or the row erased.
Confirming, withdrawing and erasing delete the key when their transaction commits.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from users.models import Signup

logger = logging.getLogger("users")

COUNT_KEY = "users:signup-count"
COUNT_TTL_SECONDS = 60


def signup_count() -> int:
    count = cache.get(COUNT_KEY)
    if count is None:
        count = Signup.objects.filter(confirmed_at__isnull=False, withdrawn_at__isnull=True).count()
        cache.set(COUNT_KEY, count, COUNT_TTL_SECONDS)
    return count


def invalidate_signup_count() -> None:
    cache.delete(COUNT_KEY)


@receiver(post_delete, sender=Signup, dispatch_uid="users.count.deleted")
def _signup_deleted(sender, instance, using, **kwargs):
    transaction.on_commit(invalidate_signup_count, using=using)
