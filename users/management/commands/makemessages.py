"""`manage.py makemessages` with this project's defaults: the public side's strings, every shipped language."""

from django.conf import settings
from django.core.management.commands import makemessages

# Not the public side: staff pages stay English, and tools and tests hold no user-facing strings.
IGNORE = [".venv*", ".local/*", "staticfiles/*", "test-output/*", "templates/admin/*", "templates/ops/*",
          "templates/staff/*", "templates/api/*", "ops/*", "tests/*", "bench/*", "drills/*", "devenv/*", "infra/*",
          "deploy/*"]  # fmt: skip


class Command(makemessages.Command):
    help = "Update locale/<language>/LC_MESSAGES/django.po from the public templates and code (every language)."

    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options["ignore_patterns"], *IGNORE]
        options["extensions"] = options["extensions"] or ["html", "txt", "py"]
        options["add_location"] = options["add_location"] or "file"
        if not options["locale"] and not options["all"]:
            options["locale"] = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
        return super().handle(*args, **options)
