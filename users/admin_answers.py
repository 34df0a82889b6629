"""The signups list's filters on the answers to the fields staff added, and the answers on a person's record.

1. A filter per single choice, multiple choice and yes/no field of the published form (formdef), built once per
   form version. Each is a containment test, answers @> '{"key": value}' (a multiple choice: '{"key":
   [value]}'), which the GIN jsonb_path_ops index on answers serves (users migration 0013).
2. Free text, numbers and dates are not searched: a trigram index over the answers' text cost every signup's
   INSERT a few dozen index entries (the bench's fields round); they are in the exports for that.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from formdef import published
from formdef.formfields import words
from users import answers

FILTERED_KINDS = {"choice", "multichoice", "yesno"}


def filters() -> list[type[admin.SimpleListFilter]]:
    """Return the list filters of the published form's choice and yes/no fields."""
    definition = published.current()
    held = _built.get(definition.id)
    if held is None or held[0] is not definition:
        if len(_built) >= 8:
            _built.clear()
        held = _built[definition.id] = (
            definition,
            [_filter(s) for s in definition.fields if s["kind"] in FILTERED_KINDS],
        )
    return held[1]


_built: dict[int, tuple[published.Definition, list]] = {}


def _filter(spec: dict) -> type[admin.SimpleListFilter]:
    key, kind = spec["key"], spec["kind"]
    if kind == "yesno":
        options = [("yes", "Yes"), ("no", "No")]
    else:
        options = [(c["value"], words(c.get("label"), "en")) for c in spec.get("choices") or []]
    values = {value for value, _label in options}

    def lookups(self, request, model_admin):
        return options

    def queryset(self, request, queryset):
        value = self.value()
        if value not in values:
            return queryset  # anything else in the URL: no filter rather than an error
        if kind == "yesno":
            return queryset.filter(answers__contains={key: value == "yes"})
        return queryset.filter(answers__contains={key: [value] if kind == "multichoice" else value})

    attrs = {"title": f"answer: {words(spec['label'], 'en')}", "parameter_name": f"answer_{key}",
             "lookups": lookups, "queryset": queryset}  # fmt: skip
    return type(f"AnswerFilter_{key}", (admin.SimpleListFilter,), attrs)


def record(signup) -> str:
    """Return the person's answers as a small table for their record page (English labels)."""
    rows = answers.labelled(signup, "en")
    if not rows:
        return "-"
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((r["label"], r["shown"]) for r in rows))
    return format_html('<table class="answers">{}</table>', body)
