"""`manage.py openapi [PATH]`: write the API's OpenAPI schema (committed as docs/openapi.json; a test compares)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from api.v1 import api


class Command(BaseCommand):
    help = "Write the /api/v1/ OpenAPI schema as JSON (default docs/openapi.json)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", default="docs/openapi.json")

    def handle(self, *, path: str, **options) -> None:
        schema = api.get_openapi_schema()
        Path(path).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        self.stdout.write(f"{len(schema['paths'])} paths written to {path}")
