"""Erase a person: anonymise their signup in place and keep proof that it happened (no personal data).

The row stays (counts by day stay true, the id stays a valid reference); everything that could identify
or reach the person goes. Consent is cleared too: erasure withdraws it, so no list of contactable
people can ever include the row, and once nobody can be identified there is no consent left to prove.
"""

from __future__ import annotations

import logging

from django.db import router, transaction

from users.models import Erasure, Signup, erased_email

logger = logging.getLogger("users")


def anonymous_values(pk: int) -> dict:
    """Return what each collected field holds after erasure (created_at is kept: it identifies nobody)."""
    return {
        "full_name": "",
        "email": erased_email(pk),  # unique like any address, so the unique index still holds
        "phone": "",
        "country": "",
        "consent": False,
        "consent_at": None,
        "consent_version": "",
        "ip_address": None,
        "user_agent": "",
    }


def erase_signup(pk: int, user) -> Erasure | None:
    """Anonymise signup `pk` on the primary and record who did it; None when it was already erased."""
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        signup = Signup.objects.using(using).select_for_update().get(pk=pk)
        if signup.is_erased:
            return None
        values = anonymous_values(pk)
        for field, value in values.items():
            setattr(signup, field, value)
        signup.save(using=using, update_fields=list(values))
        erasure = Erasure.objects.using(using).create(signup_id=pk, user=user, username=user.get_username())
    logger.info("signup %s erased by staff %s (erasure %s)", pk, erasure.username, erasure.pk)
    return erasure
