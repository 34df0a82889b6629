"""Withdrawing consent: one function for the manage page, the unsubscribe links (users/selfservice.py) and the API."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from api import events
from api.models import Event
from users import topics
from users.models import ConsentEvent, Signup
from users.stats import invalidate_signup_count

logger = logging.getLogger("users")


def withdraw(signup: Signup, ip: str | None) -> bool:
    """Withdraw consent now and revoke every link (the caller holds the row lock); False when already withdrawn."""
    if signup.withdrawn_at is not None:
        return False
    signup.withdrawn_at, signup.consent, signup.link_version = timezone.now(), False, signup.link_version + 1
    signup.save(update_fields=["withdrawn_at", "consent", "link_version"])
    ConsentEvent.objects.using(signup._state.db).create(signup=signup, kind=ConsentEvent.WITHDRAWN, ip=ip,
                                                        wording_version=signup.consent_version)  # fmt: skip
    topics.leave_all(signup, ip)  # every topic too, each with its own `withdrawn` event
    events.record(Event.WITHDRAWN, signup.pk, using=signup._state.db)  # api/: webhooks and the events feed
    transaction.on_commit(invalidate_signup_count, using=signup._state.db)
    logger.info("signup %s: consent withdrawn", signup.pk)
    return True
