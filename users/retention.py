"""Retention: what `manage.py purge` removes and when. Every rule is here, in the order the purge applies them.

0. Before anything changes, every rule's due rows are counted and logged (counts only: the dry-run summary),
   and the ceiling is checked: when rules 1 and 3 together would delete or erase more than PURGE_MAX_SHARE
   percent of the table (and more than PURGE_MAX_FLOOR rows), they are refused (PurgeRefused, after the
   harmless rules 2 and 4 have run) unless `force`. A wrong clock, a wrong setting or a bad restore then
   costs a failed run and an alarm, not the list.
1. Unconfirmed signups. A signup whose address was never confirmed, created more than
   RETENTION_UNCONFIRMED_DAYS (30) days ago AND at or after the double opt-in cut-over (`cutover()`), is
   DELETED, with its ledger (a `given` event, CASCADE) and its queued emails. Deleted rather than erased:
   nobody proved the address was theirs, so there is no consent to keep proof of, and an anonymised row plus
   a `purged` event per typo, stranger's address or bot would keep growing while meaning nothing.
   Signups from before the cut-over were never asked to confirm: they are never deleted by this rule
   (`manage.py reconfirm` asks them, in their language; those who confirm are ordinary confirmed rows; docs/personal-data.md).
   The cut-over is DOUBLE_OPT_IN_SINCE when set, else the time migration 0004 (which added confirmed_at)
   was applied here plus CUTOVER_GRACE (web tasks of the old release keep taking signups, unasked, during
   the rolling deploy). Either way an error errs towards keeping: a database rebuilt and reloaded gets a
   later migration time, so more rows are protected, never fewer; when neither can be read, rule 1 is off.
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
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Q, QuerySet
from django.utils import timezone

from users import tasks
from users.erasure import erase_signup
from users.models import ERASED_EMAIL_DOMAIN, ConsentEvent, Signup, SignupExport

logger = logging.getLogger("users.retention")

REMOVED = "(removed)"  # what a purged search term reads in the export record
OPT_IN_MIGRATION = ("users", "0004_person_confirm_consent_ledger")  # added confirmed_at: double opt-in began
CUTOVER_GRACE = timedelta(days=1)  # the old release's web tasks took unasked signups during the rollout
DESTRUCTIVE = ("unconfirmed_deleted", "withdrawn_erased")  # the rules the ceiling holds back


class PurgeRefused(Exception):
    """The destructive rules would remove more than the ceiling allows (the text says how many; no data)."""


def cutover(using: str = "default") -> datetime | None:
    """Return when double opt-in began (rule 1 never deletes a signup made before it), or None if unknown."""
    if settings.DOUBLE_OPT_IN_SINCE is not None:
        return settings.DOUBLE_OPT_IN_SINCE
    recorder = MigrationRecorder(connections[using])
    app, name = OPT_IN_MIGRATION
    applied = recorder.migration_qs.filter(app=app, name=name).values_list("applied", flat=True).first()
    return applied + CUTOVER_GRACE if applied is not None else None


def purge(*, dry_run: bool = False, force: bool = False) -> dict[str, int]:
    """Apply every rule once; return how many rows each changed (a dry run rolls everything back).

    Raises PurgeRefused, after the non-destructive rules have run, when the destructive ones are over the
    ceiling and not `force`.
    """
    using = router.db_for_write(Signup)
    rules = _rules(using, timezone.now())
    due = {name: queryset.using(using).count() for name, queryset, _ in rules}
    logger.info("purge due (counted before any change): %s", _summary(due))
    refused = None if force or dry_run else _over_ceiling(using, due)
    if refused:
        logger.error("purge: %s; destructive rules skipped (run with --force if this is right)", refused)
        rules = [rule for rule in rules if rule[0] not in DESTRUCTIVE]
    # A dry run does it all in one transaction (each batch a savepoint) and rolls it back.
    with transaction.atomic(using=using) if dry_run else nullcontext():
        counts = {name: _batches(using, queryset, apply) for name, queryset, apply in rules}
        if dry_run:
            transaction.set_rollback(True, using=using)
    logger.info("purge%s: %s", " (dry run, nothing changed)" if dry_run else "", _summary(counts))
    if refused:
        raise PurgeRefused(refused)
    return counts


def _rules(using: str, now: datetime) -> list[tuple[str, QuerySet, Callable[[str, list[int]], int]]]:
    network_before = now - timedelta(days=settings.RETENTION_NETWORK_DAYS)
    since = cutover(using)
    if since is None:
        logger.warning("purge: double opt-in cut-over unknown (migration 0004 not recorded): rule 1 is off")
    unconfirmed = _unconfirmed(now - timedelta(days=settings.RETENTION_UNCONFIRMED_DAYS), since)
    return [
        ("unconfirmed_deleted", unconfirmed, _delete),
        ("ip_user_agent_cleared", _network(network_before), _clear_network),
        ("confirmed_ip_cleared", _confirmed_ip(network_before), _clear_confirmed_ip),
        ("event_ips_cleared", _event_ips(network_before), _clear_event_ips),
        ("withdrawn_erased", _withdrawn(now - timedelta(days=settings.RETENTION_WITHDRAWN_DAYS)), _erase),
        ("export_searches_cleared", _export_searches(network_before), _clear_searches),
    ]


def _over_ceiling(using: str, due: dict[str, int]) -> str | None:
    """Say why the destructive rules may not run (too large a share of the table), or None."""
    destructive = sum(due[name] for name in DESTRUCTIVE)
    total = Signup.objects.using(using).count()
    allowed = max(total * settings.PURGE_MAX_SHARE / 100, settings.PURGE_MAX_FLOOR)
    if destructive <= allowed:
        return None
    return (f"{destructive} of {total} signups due for deletion or erasure, over the ceiling of"
            f" {settings.PURGE_MAX_SHARE:g}% (at least {settings.PURGE_MAX_FLOOR} rows)")  # fmt: skip


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}={n}" for name, n in counts.items())


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


def _unconfirmed(before, since: datetime | None) -> QuerySet:
    if since is None:
        return Signup.objects.none()
    return Signup.objects.filter(_not_erased(), confirmed_at__isnull=True, created_at__lt=before,
                                 created_at__gte=since)  # fmt: skip


def _delete(using: str, pks: list[int]) -> int:
    tasks.email_tasks_of(pks, using=using).delete()
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
