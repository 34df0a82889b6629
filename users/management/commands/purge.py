"""`manage.py purge`: apply the retention rules once (users/retention.py); run it on a schedule."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from users.retention import purge


class Command(BaseCommand):
    help = "Delete, clear and erase what the retention periods say is due (users/retention.py). Safe to repeat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what is due, change nothing")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        counts = purge(dry_run=dry_run)
        summary = ", ".join(f"{name} {n}" for name, n in counts.items())
        self.stdout.write(f"purge{' (dry run)' if dry_run else ''}: {summary}")
