"""A person's answers to the fields staff added (Signup.answers), told in words: for their pages and exports.

1. A field's label is its row's (formdef.Field, on the form or switched off), in the language asked for; a field
   whose row was deleted is named by the version the person answered (Signup.form_version); else by its key.
2. A value is shown as the person chose it: a choice by its label, yes/no as Yes/No, a date written out in the
   language (15 March 2027), a number as stored. The stored JSON itself (typed) is what the JSON download and
   the API carry.
3. `columns` lists every field key exports have a column for: the current fields in form order, then any
   other field that has answers to show (switched off: its answers stay until the person is erased).
"""

from __future__ import annotations

from datetime import date

from django.utils import formats
from django.utils.translation import gettext, override

from formdef import published
from formdef.formfields import words
from formdef.models import Field


def specs(keys, signup_version: int | None = None, *, using: str | None = None) -> dict[str, dict]:
    """Return the last known definition of each field key: its row's, else the signup's version's."""
    found = {}
    for row in Field.objects.db_manager(using).filter(key__in=list(keys)):
        found[row.key] = {"key": row.key, "kind": row.kind, "label": row.label, "choices": row.choices or []}
    missing = [key for key in keys if key not in found]
    if missing and signup_version:
        definition = published.get(signup_version)
        for key in missing:
            spec = definition.field(key) if definition is not None else None
            if spec is not None:
                found[key] = spec
    return found


def shown(value, spec: dict | None, language: str) -> str:
    """Return one stored answer as words in `language`."""
    if isinstance(value, bool):
        with override(language):
            return gettext("Yes") if value else gettext("No")
    if spec is not None and spec.get("kind") == "date" and isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        with override(language):
            return formats.date_format(day, "DATE_FORMAT")  # written out like the page's other dates
    if spec is not None and spec.get("choices"):
        labels = {c["value"]: words(c.get("label"), language) for c in spec["choices"]}
        if isinstance(value, list):
            return ", ".join(labels.get(v, str(v)) for v in value)
        return labels.get(value, str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def labelled(signup, language: str) -> list[dict]:
    """Return the person's answers in form order: key, label and shown value in `language`, typed value."""
    answers = signup.answers or {}
    if not answers:
        return []
    known = specs(list(answers), signup.form_version, using=signup._state.db)
    order = {spec["key"]: n for n, spec in enumerate(published.current().fields)}
    keys = sorted(answers, key=lambda k: (order.get(k, len(order)), k))
    return [
        {
            "key": key,
            "label": words(known[key]["label"], language) if key in known else key,
            "shown": shown(answers[key], known.get(key), language),
            "value": answers[key],
        }
        for key in keys
    ]


def columns(*, using: str | None = None) -> list[dict]:
    """Return the fields exports show a column for: the current ones in form order, then switched-off ones."""
    current = list(published.current().fields)
    keys = {spec["key"] for spec in current}
    rows = Field.objects.db_manager(using).exclude(key__in=keys).order_by("position", "id")
    extra = [{"key": r.key, "kind": r.kind, "label": r.label, "choices": r.choices or []} for r in rows]
    return current + extra
