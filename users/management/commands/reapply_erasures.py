"""`manage.py reapply_erasures`: after a database restore, erase again everyone the erasure ledger names.

1. Read the ledger's entries this database does not know (users.tombstones.unknown_names): the erasures made
   after the backup's point in time. Entries it knows were erased in this database already.
2. For each, erase (users.erasure.erase_signup, ledger=False: the entry exists) every row still holding data
   that was created before the erasure and is that person's:
   - by signup id AND created_at equal to the entry's (the very row; an id handed out again after the
     restore belongs to someone else and a later created_at);
   - by the keyed HMAC of the address, for rows created before the erasure time.
   A row created after the erasure is a new signup with new consent: it stays (counted as "kept").
3. Record every entry's name (Tombstone, reapplied_at) once its rows are erased: the ledger and the database
   agree again, so the worker sends email again and /ops/ and /ready stop saying "restore pending".
4. Idempotent: a second run finds no unknown entry and changes nothing. Interrupted, it starts over safely.
Counts only in the output, never an address or an id.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import router, transaction
from django.utils import timezone

from users import tombstones
from users.erasure import erase_signup
from users.models import ERASED_EMAIL_DOMAIN, Signup, Tombstone

PROGRESS_SECONDS = 5.0
CHUNK = 5000


class Command(BaseCommand):
    help = "After a database restore: erase again every person the erasure ledger names (idempotent; counts only)."

    def handle(self, **options) -> None:
        started = time.monotonic()
        entries = self._unknown_entries()
        counts = {"entries": len(entries), "by_id": 0, "by_address": 0, "kept": 0}
        if entries:
            self._reapply(entries, counts)
        tombstones.restore_check.reset()
        self.stdout.write(
            f"reapply_erasures: {counts['entries']} ledger entries unknown to this database; "
            f"{counts['by_id'] + counts['by_address']} rows erased again ({counts['by_id']} by signup id, "
            f"{counts['by_address']} by address); {counts['kept']} kept (signed up again after their erasure); "
            f"{time.monotonic() - started:.1f} s"
        )

    def _unknown_entries(self) -> list[tombstones.Entry]:
        names = list(tombstones.unknown_names())
        entries, last = [], time.monotonic()
        for i, name in enumerate(names, 1):
            entries.append(tombstones.read(name))
            if time.monotonic() - last > PROGRESS_SECONDS:
                self.stderr.write(f"  read {i} of {len(names)} ledger entries")
                last = time.monotonic()
        return entries

    def _reapply(self, entries: list[tombstones.Entry], counts: dict) -> None:
        using = router.db_for_write(Signup)
        by_id = {e.signup_id: e for e in entries}
        by_address: dict[str, tombstones.Entry] = {}
        for e in entries:  # the latest erasure of an address decides which of its rows are older
            if e.address not in by_address or e.erased_at > by_address[e.address].erased_at:
                by_address[e.address] = e
        newest = max(e.erased_at for e in entries)
        live = Signup.objects.using(using).exclude(email__endswith=f"@{ERASED_EMAIL_DOMAIN}")
        doomed: dict[int, tuple[str, str]] = {}  # pk: (how it matched, the entry's reason)
        rows = live.filter(created_at__lt=newest).values_list("pk", "email", "created_at")
        last, seen = time.monotonic(), 0
        for pk, email, created_at in rows.iterator(chunk_size=CHUNK):
            seen += 1
            entry = by_id.get(pk)
            if entry is not None and entry.created_at == created_at:
                doomed[pk] = ("by_id", entry.reason)
                continue
            entry = by_address.get(tombstones.address_hmac(email))
            if entry is not None:
                if created_at < entry.erased_at:
                    doomed[pk] = ("by_address", entry.reason)
                else:
                    counts["kept"] += 1
            if time.monotonic() - last > PROGRESS_SECONDS:
                self.stderr.write(f"  matched {seen} rows against the ledger, {len(doomed)} to erase")
                last = time.monotonic()
        counts["kept"] += self._count_kept_after(live, newest, by_address)
        for i, (pk, (how, reason)) in enumerate(sorted(doomed.items()), 1):
            if erase_signup(pk, None, reason=reason, ledger=False) is not None:
                counts[how] += 1
            if i % 1000 == 0:
                self.stderr.write(f"  erased {i} of {len(doomed)}")
        now = timezone.now()
        with transaction.atomic(using=using):
            Tombstone.objects.using(using).bulk_create(
                [
                    Tombstone(name=e.name, signup_id=e.signup_id, erased_at=e.erased_at, reapplied_at=now)
                    for e in entries
                ],
                ignore_conflicts=True,
                batch_size=1000,
            )

    def _count_kept_after(self, live, newest, by_address) -> int:
        """Count the rows made after the newest erasure that match an erased address (new consent: kept)."""
        later = live.filter(created_at__gte=newest).values_list("email", flat=True)
        return sum(tombstones.address_hmac(email) in by_address for email in later.iterator(chunk_size=CHUNK))
