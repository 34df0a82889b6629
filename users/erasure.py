"""Erase a person: anonymise their signup in place and keep proof that it happened (no personal data).

1. The row stays (counts by day stay true, the id stays a valid reference); everything that could identify
   or reach the person goes. Consent is cleared too: erasure withdraws it.
2. The consent ledger keeps its entries (when, which wording, which topic) but loses every IP, and gains an
   `erased` (on request, by the person or staff) or `purged` (retention) entry holding no personal data. The
   person's topic memberships (users.SignupTopic) are deleted.
3. The person's queued and past emails (the queue's task rows, users.tasks) are deleted: nothing more is
   sent, and no traceback or argument kept there can name them.
4. Cached data about them goes too: the rate-limit counters naming their address (hashed) or their IP.
5. All of it in one transaction on the primary; the Erasure audit row says who (staff) or "the person".
6. The erasure ledger (users/tombstones.py), which a database restore cannot roll back, gains an entry: its
   name is recorded here (Tombstone) and the entry queued (users.tasks.write_tombstone) in this same
   transaction, so the erasure never waits on S3 and no entry is lost. `manage.py reapply_erasures` erases
   again, from the ledger, whoever a restore brought back; it passes ledger=False (the entry exists).
"""

from __future__ import annotations

import logging

from django.db import router, transaction
from django.utils import timezone

from api import events
from api.models import Event
from users import tasks, tombstones
from users.models import ConsentEvent, Erasure, Signup, SignupTopic, Tombstone, erased_email
from users.ratelimits import forget_address
from users.stats import invalidate_signup_count

logger = logging.getLogger("users")

REASONS = {"erased": ConsentEvent.ERASED, "purged": ConsentEvent.PURGED}
SELF_SERVICE = "(the person)"  # Erasure.username when the person erased themselves
RETENTION = "(retention)"  # Erasure.username when the purge did it
REAPPLIED = "(restore: reapplied)"  # Erasure.username when reapply_erasures did it again after a restore


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
        "confirmed_ip": None,
        "email_blocked_reason": "",
        "answers": {},  # the fields staff added (formdef): what the person answered goes with them
    }


def erase_signup(pk: int, user=None, *, reason: str = "erased", ledger: bool = True) -> Erasure | None:
    """Anonymise signup `pk` with its ledger, emails and cache; None when it was already erased.

    `user` is the staff member who did it, or None for the person themselves (reason "erased") or the
    retention purge (reason "purged"). `ledger=False` (reapply_erasures only): no new erasure ledger entry.
    """
    kind = REASONS[reason]
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        signup = Signup.objects.using(using).select_for_update().get(pk=pk)
        if signup.is_erased:
            return None
        address, ip, created_at = signup.email, signup.ip_address, signup.created_at
        values = {**anonymous_values(pk), "link_version": signup.link_version + 1}  # every link is revoked
        for field, value in values.items():
            setattr(signup, field, value)
        if signup.withdrawn_at is None:
            signup.withdrawn_at = timezone.now()
            values["withdrawn_at"] = signup.withdrawn_at
        signup.save(using=using, update_fields=list(values))
        ConsentEvent.objects.using(using).filter(signup_id=pk).update(ip=None)
        SignupTopic.objects.using(using).filter(signup_id=pk).delete()
        ConsentEvent.objects.using(using).create(signup_id=pk, kind=kind)
        tasks.forget_signup(pk, using=using)
        username = user.get_username() if user is not None else (SELF_SERVICE if kind == "erased" else RETENTION)
        erasure = Erasure.objects.using(using).create(signup_id=pk, user=user, username=REAPPLIED if not ledger
                                                      else username)  # fmt: skip
        if ledger:
            _record_tombstone(pk, address, created_at, erasure.erased_at, reason, using)
        events.record(Event.ERASED, pk, using=using)  # api/: webhooks and the events feed (no personal data)
        transaction.on_commit(lambda: _forget_cached(address, ip), using=using)
    who = f"staff {erasure.username}" if user is not None else erasure.username
    logger.info("signup %s %s by %s (erasure %s)", pk, reason, who, erasure.pk)
    return erasure


def _record_tombstone(pk: int, address: str, created_at, erased_at, reason: str, using: str) -> None:
    """Name the ledger entry in this database and queue writing it (both in the erasure's transaction)."""
    name = tombstones.name_for(pk, erased_at)
    Tombstone.objects.using(using).create(name=name, signup_id=pk, erased_at=erased_at)
    entry = tombstones.make_entry(address=address, signup_id=pk, created_at=created_at, erased_at=erased_at,
                                  reason=reason)  # fmt: skip
    tasks.enqueue_tombstone(name, entry)


def _forget_cached(address: str, ip: str | None) -> None:
    forget_address(address, ip)
    invalidate_signup_count()
