"""The signup form's topic checkboxes, built from a published form version (formdef.published.Definition).

1. Only the version's public topics are offered, in its order, each with its name, description and consent
   words in the visitor's language (the active translation; English when a language's text is missing).
2. Choosing no topic is allowed: the form's own consent box (required) is the agreement to be contacted about
   the service; each topic is an extra list the person joins by ticking it, with its own consent words.
3. A value that is not one of the version's public topics is refused with the field's error ("Select a valid
   choice"), and nothing is stored. Hidden topics are never accepted from the form.
4. Built once per (version, language) and shared by every form (users.forms.SignupForm copies its fields only
   when it has errors); never per request.
"""

from __future__ import annotations

import threading

from django import forms
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

FIELD = "topics"  # the form field's name, and the key of the cleaned value
KEPT = 64  # (version, language) pairs kept built; more: the oldest are built again
_built: dict[tuple[int, str], tuple[object, dict]] = {}
_lock = threading.Lock()


def words(texts: dict | None, language: str) -> str:
    """Return a {language: text} dict's text in `language`, else in the default language, else ""."""
    texts = texts or {}
    return texts.get(language) or texts.get(settings.LANGUAGE_CODE) or ""


class TopicsField(forms.MultipleChoiceField):
    """The chosen public topics' keys, each at most once, in the form's order."""

    widget = forms.CheckboxSelectMultiple

    def clean(self, value):
        chosen = set(super().clean(value))
        return [key for key, _label in self.choices if key in chosen]


def build(definition) -> dict[str, forms.Field]:
    """Return {"topics": field} for the version's public topics (empty when it has none), in the active language."""
    if not definition.public_topics:
        return {}
    language = translation.get_language() or settings.LANGUAGE_CODE
    key = (definition.id, language)
    hit = _built.get(key)
    if hit is None or hit[0] is not definition:  # a process that forgot its versions (tests) builds anew
        with _lock:
            if len(_built) >= KEPT:
                _built.clear()
            hit = _built[key] = (definition, _make(definition, language))
    return hit[1]


def _make(definition, language: str) -> dict[str, forms.Field]:
    choices = [(t["key"], words(t["name"], language)) for t in definition.public_topics]
    field = TopicsField(
        label=_("Topics (optional)"), choices=choices, required=False,
        error_messages={"invalid_choice": _("Please choose only from the topics shown.")},
    )  # fmt: skip
    return {FIELD: field}


def options(definition, chosen: list[str]) -> list[dict]:
    """Return what the form's fieldset shows per public topic: key, name, description, consent words, ticked."""
    language = translation.get_language() or settings.LANGUAGE_CODE
    return [
        {
            "key": t["key"],
            "name": words(t["name"], language),
            "description": words(t["description"], language),
            "consent": words(t["consent"], language),
            "checked": t["key"] in chosen,
        }
        for t in definition.public_topics
    ]


def chosen(definition, keys: list[str]) -> list[tuple[int, str]]:
    """Return (topic id, wording version in the active language) for each chosen key, as the signup stores them."""
    language = translation.get_language() or settings.LANGUAGE_CODE
    picked = []
    for key in keys:
        topic = definition.topic(key)
        if topic is not None:
            versions = topic.get("wording_version") or {}
            picked.append((topic["id"], versions.get(language) or versions.get(settings.LANGUAGE_CODE, "")))
    return picked
