"""`manage.py reconfirm`: ask the people who signed up before double opt-in to confirm, once each, throttled."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction
from django.utils import timezone

from users import emails, tasks
from users.models import ERASED_EMAIL_DOMAIN, Signup
from users.retention import cutover

logger = logging.getLogger("users.retention")


class Command(BaseCommand):
    help = (
        "Queue a 'please confirm' email, in their language, to every signup from before the double opt-in cut-over"
        " that is unconfirmed, not withdrawn, not blocked and not yet asked; spread at RECONFIRM_PER_HOUR."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="ask at most this many people in this run")
        parser.add_argument("--dry-run", action="store_true", help="count who would be asked, queue nothing")

    def handle(self, *args, limit: int | None = None, dry_run: bool = False, **options) -> None:
        using = router.db_for_write(Signup)
        since = cutover(using)
        if since is None:
            raise CommandError("the double opt-in cut-over is unknown: set DOUBLE_OPT_IN_SINCE")
        due = (
            Signup.objects.using(using)
            .filter(created_at__lt=since, confirmed_at__isnull=True, withdrawn_at__isnull=True)
            .filter(email_blocked_at__isnull=True, reconfirm_requested_at__isnull=True)
            .exclude(email__endswith=f"@{ERASED_EMAIL_DOMAIN}")
            .order_by("created_at", "id")
        )
        if dry_run:
            count = due.count() if limit is None else min(due.count(), limit)
            logger.info("reconfirm (dry run): %d to ask", count)
            self.stdout.write(f"reconfirm (dry run): {count} to ask")
            return
        asked = self._ask(using, due, limit)
        logger.info("reconfirm: %d asked", asked)
        self.stdout.write(f"reconfirm: {asked} asked, at most {settings.RECONFIRM_PER_HOUR} an hour")

    def _ask(self, using: str, due, limit: int | None) -> int:
        """Queue the emails in batches, each row marked in the transaction that queues its email (once each)."""
        gap = timedelta(hours=1) / settings.RECONFIRM_PER_HOUR
        start, asked = timezone.now(), 0
        # Emails already spread by an earlier run that is still draining: start after the last of them.
        pending = tasks.email_tasks(using=using).filter(status="READY", run_after__gt=start).order_by("-run_after")
        last = pending.filter(args_kwargs__kwargs__kind=emails.RECONFIRM).values_list("run_after", flat=True).first()
        start = max(start, last + gap) if last else start
        while limit is None or asked < limit:
            with transaction.atomic(using=using):
                size = 500 if limit is None else min(500, limit - asked)
                pks = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size])
                if not pks:
                    break
                now = timezone.now()
                Signup.objects.using(using).filter(pk__in=pks).update(reconfirm_requested_at=now)
                for pk in pks:
                    tasks.enqueue_email(pk, emails.RECONFIRM, run_after=start + gap * asked)
                    asked += 1
        return asked
