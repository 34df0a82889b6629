"""`manage.py purge`: apply the retention rules once (users/retention.py); run it on a schedule."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from users.retention import PurgeRefused, purge


class Command(BaseCommand):
    help = "Delete, clear and erase what the retention periods say is due (users/retention.py). Safe to repeat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what is due, change nothing")
        parser.add_argument(
            "--force", action="store_true", help="delete and erase even over the ceiling (PURGE_MAX_SHARE)"
        )

    def handle(self, *args, dry_run: bool = False, force: bool = False, **options) -> None:
        try:
            counts = purge(dry_run=dry_run, force=force)
        except PurgeRefused as exc:
            raise CommandError(f"purge refused: {exc}; nothing deleted or erased (--force to override)") from None
        summary = ", ".join(f"{name} {n}" for name, n in counts.items())
        self.stdout.write(f"purge{' (dry run)' if dry_run else ''}: {summary}")
