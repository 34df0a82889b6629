"""`manage.py rotate_webhook_keys`: encrypt every endpoint's secrets again under the first WEBHOOK_SECRET_KEYS key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction

from api import crypto
from api.models import Endpoint


class Command(BaseCommand):
    help = (
        "Encrypt every webhook endpoint's secret again under the first of WEBHOOK_SECRET_KEYS (after putting a "
        "new key first); the old key can be dropped once this has run."
    )

    def handle(self, **options) -> None:
        using = router.db_for_write(Endpoint)
        done, unreadable = 0, []
        with transaction.atomic(using=using):
            for endpoint in Endpoint.objects.using(using).select_for_update().order_by("pk"):
                if any(isinstance(v, crypto.Undecryptable) for v in (endpoint.secret, endpoint.previous_secret)):
                    unreadable.append(endpoint.pk)
                    continue
                endpoint.save(using=using, update_fields=["secret", "previous_secret"])  # encrypts with the first key
                done += 1
        self.stdout.write(f"{done} endpoint(s) encrypted under the first key")
        if unreadable:
            raise CommandError(
                f"endpoint(s) {unreadable}: no key in WEBHOOK_SECRET_KEYS opens their secret (left as is)"
            )
