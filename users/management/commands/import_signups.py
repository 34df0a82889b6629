"""`manage.py import_signups FILE`: import a listmonk or Mailchimp export, with a preview and a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from users import imports
from users.management.commands.seed_signups import Progress


class Command(BaseCommand):
    help = (
        "Import a CSV exported from listmonk (subscribers) or Mailchimp (audience): duplicates, erased and opted-out"
        " addresses skipped and counted, opt-in evidence kept, the rest asked to confirm at RECONFIRM_PER_HOUR."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the CSV file (UTF-8, with or without a BOM)")
        parser.add_argument("--language", default="", help="language of rows that name none (default LANGUAGE_CODE)")
        parser.add_argument("--dry-run", action="store_true", help="print the preview's counts, write nothing")

    def handle(self, *args, file: str, language: str = "", dry_run: bool = False, **options) -> None:
        try:
            with open(file, "rb") as stream:
                found = imports.preview(stream, default_language=language)
            self._print_preview(found)
            if dry_run or not found.total:
                return
            progress = Progress(found.total, self.stderr)
            with open(file, "rb") as stream:
                counts = imports.run(stream, default_language=language, progress=progress.update)
            progress.finish()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except imports.ImportRefused as exc:
            raise CommandError(f"not imported: {exc}") from None
        summary = ", ".join(f"{counts[key]:,} {key}" for key in imports.OUTCOMES if counts[key])
        self.stdout.write(f"import_signups: {sum(counts.values()):,} rows ({found.layout}): {summary}")

    def _print_preview(self, found: imports.Preview) -> None:
        self.stdout.write(f"{found.total:,} rows in {found.layout}'s layout; expected outcomes:")
        for key, label in imports.OUTCOMES.items():
            if found.counts[key]:
                self.stdout.write(f"  {found.counts[key]:>9,}  {label}")
        if found.last_email_at:
            self.stdout.write(f"  the last confirmation email goes out at {found.last_email_at:%Y-%m-%d %H:%M} UTC")
