"""Fields of every kind, as staff would define them, for the tests of the form, the exports and the fuzz."""

from __future__ import annotations

import time

from formdef import published
from formdef.models import Field

LANGS = ("en", "de", "fr", "es")


def words(en: str) -> dict:
    return {lang: f"{en} [{lang}]" if lang != "en" else en for lang in LANGS}


def choice(value: str, en: str) -> dict:
    return {"value": value, "label": words(en)}


EVERY_KIND = {
    "company": {"kind": Field.TEXT, "label": words("Company"), "max_length": 40, "required": True,
                "help_text": words("Where you work")},
    "seats": {"kind": Field.NUMBER, "label": words("Seats"), "min_value": 1, "max_value": 500},
    "source": {"kind": Field.CHOICE, "label": words("How did you hear of us"),
               "choices": [choice("press", "Press"), choice("friend", "A friend"), choice("web", "The web")]},
    "interests": {"kind": Field.MULTICHOICE, "label": words("Interests"),
                  "choices": [choice("news", "News"), choice("events", "Events"), choice("jobs", "Jobs")]},
    "member": {"kind": Field.YESNO, "label": words("Already a member")},
    "born": {"kind": Field.DATE, "label": words("Date of birth")},
}  # fmt: skip


def fresh_version_ids() -> None:
    """Start version ids where no earlier test's were: a server process kept by the session (app_server) keeps
    every version it read by id forever, as it may (ids never repeat), but each test's flush restarts them."""
    from django.db import connection

    start = 1000 + time.time_ns() // 1_000_000 % 900_000_000  # milliseconds: a new range for each test
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('formdef_formversion', 'id'), %s)", [start])


def define(keys=None, by: str = "tests") -> published.Definition:
    """Create the fields named (all kinds by default) in that order, publish, and return the version."""
    for position, key in enumerate(keys or EVERY_KIND):
        Field.objects.create(key=key, position=position, **EVERY_KIND[key])
    version = published.publish(by)
    return published.get(version.pk)


# A complete, valid set of answers as a browser posts them, and as they are stored.
POSTED = {"f_company": " ACME  Ltd ", "f_seats": "12", "f_source": "press", "f_interests": ["events", "news"],
          "f_member": "no", "f_born": "1990-02-28"}  # fmt: skip
STORED = {"company": "ACME Ltd", "seats": 12, "source": "press", "interests": ["news", "events"], "member": False,
          "born": "1990-02-28"}  # fmt: skip
