"""Retention: what `manage.py purge` removes and when. Every rule is here, in the order the purge applies them.

1. Unconfirmed signups. A signup whose address was never confirmed, created more than
   RETENTION_UNCONFIRMED_DAYS (30) days ago, is DELETED, with its ledger (a `given` event, CASCADE) and its
   queued emails. Deleted rather than erased: nobody proved the address was theirs, so there is no consent
   to keep proof of, and an anonymised row plus a `purged` event per typo, stranger's address or bot would
   keep growing while meaning nothing (the landing count counts confirmed people only). This includes
   signups from before double opt-in existed: they were never confirmed either (see docs/personal-data.md).
2. Network data. RETENTION_NETWORK_DAYS (90) after it was collected, the IP and user agent of a signup
   (from created_at), its confirmation IP (from confirmed_at) and each ledger event's IP (from its time)
   are cleared. The ledger keeps when, what and which wording: proof of consent without the network trace.
3. Withdrawn consent. A signup whose consent was withdrawn more than RETENTION_WITHDRAWN_DAYS (30) days ago
   is erased: users.erasure.erase_signup(pk, None, reason="purged") anonymises the row, scrubs its ledger's
   IPs, emails and cache, and adds a `purged` event holding no personal data (the proof that consent was
   given, then withdrawn, then the data removed).
4. Staff search terms. An export record (users.SignupExport) older than RETENTION_NETWORK_DAYS keeps that a
   search was used, not what it was: `q` becomes "(removed)". Names or addresses typed into the admin's
   search are personal data too.
Erased rows (erased-<id>@invalid) are never touched again by rules 1 and 3.

How it runs: each rule works in batches of PURGE_BATCH_SIZE rows; each batch is one transaction on the
primary that claims its rows with SELECT ... FOR UPDATE SKIP LOCKED. Two purges at once share the work,
neither waits for nor repeats the other's; a row someone else holds (a person erasing themselves right
now) is left for the next run. Every rule's condition excludes what it has already done, so a second run
finds nothing: idempotent. Only counts are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import router, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from users import tasks
from users.erasure import erase_signup
from users.models import ERASED_EMAIL_DOMAIN, ConsentEvent, Signup, SignupExport

logger = logging.getLogger("users.retention")

REMOVED = "(removed)"  # what a purged search term reads in the export record


def purge(*, dry_run: bool = False) -> dict[str, int]:
    """Apply every rule once; return how many rows each changed (a dry run rolls everything back)."""
    using = router.db_for_write(Signup)
    now = timezone.now()
    unconfirmed_before = now - timedelta(days=settings.RETENTION_UNCONFIRMED_DAYS)
    network_before = now - timedelta(days=settings.RETENTION_NETWORK_DAYS)
    withdrawn_before = now - timedelta(days=settings.RETENTION_WITHDRAWN_DAYS)
    rules = [
        ("unconfirmed_deleted", _unconfirmed(unconfirmed_before), _delete),
        ("ip_user_agent_cleared", _network(network_before), _clear_network),
        ("confirmed_ip_cleared", _confirmed_ip(network_before), _clear_confirmed_ip),
        ("event_ips_cleared", _event_ips(network_before), _clear_event_ips),
        ("withdrawn_erased", _withdrawn(withdrawn_before), _erase),
        ("export_searches_cleared", _export_searches(network_before), _clear_searches),
    ]
    # A dry run does it all in one transaction (each batch a savepoint) and rolls it back.
    with transaction.atomic(using=using) if dry_run else nullcontext():
        counts = {name: _batches(using, queryset, apply) for name, queryset, apply in rules}
        if dry_run:
            transaction.set_rollback(True, using=using)
    summary = ", ".join(f"{name}={n}" for name, n in counts.items())
    logger.info("purge%s: %s", " (dry run, nothing changed)" if dry_run else "", summary)
    return counts


def _batches(using: str, queryset: QuerySet, apply: Callable[[str, list[int]], int]) -> int:
    """Claim up to PURGE_BATCH_SIZE unlocked rows at a time and apply the rule to them, until none is left."""
    total = 0
    while True:
        with transaction.atomic(using=using):
            claimed = queryset.using(using).select_for_update(skip_locked=True, of=("self",)).order_by()
            pks = list(claimed.values_list("pk", flat=True)[: settings.PURGE_BATCH_SIZE])
            if not pks:
                return total
            total += apply(using, pks)


# --- 1. unconfirmed signups -------------------------------------------------------------------------------
def _not_erased() -> Q:
    return ~Q(email__endswith=f"@{ERASED_EMAIL_DOMAIN}")


def _unconfirmed(before) -> QuerySet:
    return Signup.objects.filter(_not_erased(), confirmed_at__isnull=True, created_at__lt=before)


def _delete(using: str, pks: list[int]) -> int:
    tasks.email_tasks(using=using).filter(args_kwargs__kwargs__signup_id__in=pks).delete()
    _, deleted = Signup.objects.using(using).filter(pk__in=pks).delete()  # events go with them (CASCADE)
    return deleted.get(Signup._meta.label, 0)


# --- 2. network data --------------------------------------------------------------------------------------
def _network(before) -> QuerySet:
    return Signup.objects.filter(Q(ip_address__isnull=False) | ~Q(user_agent=""), created_at__lt=before)


def _clear_network(using: str, pks: list[int]) -> int:
    return Signup.objects.using(using).filter(pk__in=pks).update(ip_address=None, user_agent="")


def _confirmed_ip(before) -> QuerySet:
    return Signup.objects.filter(confirmed_ip__isnull=False, confirmed_at__lt=before)


def _clear_confirmed_ip(using: str, pks: list[int]) -> int:
    return Signup.objects.using(using).filter(pk__in=pks).update(confirmed_ip=None)


def _event_ips(before) -> QuerySet:
    return ConsentEvent.objects.filter(ip__isnull=False, at__lt=before)


def _clear_event_ips(using: str, pks: list[int]) -> int:
    # A queryset update: the ledger refuses save() on an existing entry (append-only); clearing an IP is allowed.
    return ConsentEvent.objects.using(using).filter(pk__in=pks).update(ip=None)


# --- 3. withdrawn consent ---------------------------------------------------------------------------------
def _withdrawn(before) -> QuerySet:
    return Signup.objects.filter(_not_erased(), withdrawn_at__lt=before)


def _erase(using: str, pks: list[int]) -> int:
    return sum(erase_signup(pk, None, reason="purged") is not None for pk in pks)


# --- 4. staff search terms --------------------------------------------------------------------------------
def _export_searches(before) -> QuerySet:
    return SignupExport.objects.filter(filters__has_key="q", started_at__lt=before).exclude(filters__q=REMOVED)


def _clear_searches(using: str, pks: list[int]) -> int:
    rows = SignupExport.objects.using(using).filter(pk__in=pks)
    for export in rows:
        export.filters = {**export.filters, "q": REMOVED}
        export.save(using=using, update_fields=["filters"])
    return len(pks)
