"""The Django form fields of a published version's own fields (formdef/published.py Definition), per language.

1. One form field per defined field, named PREFIX + key (never clashing with the form's fixed fields): text
   (max length, our text rules: project/text.py), number (a range, at most 15 digits so a JSON number keeps it
   exactly), single choice (radio buttons up to RADIO_MAX choices, a list beyond), multiple choice
   (checkboxes), yes/no (two radio buttons: an unticked box could not tell "no" from "not answered"), date
   (ISO, an <input type=date>). Required or optional; label, help and choice labels in the active language.
2. Built once per (version, language) and kept (`build`): versions never change, and the signup form shares
   these field objects between requests until one has errors (users/forms.py SignupForm).
3. `answers` turns cleaned values into the typed JSON stored in Signup.answers: numbers as JSON numbers,
   dates as ISO strings, yes/no as booleans, multiple choice as lists of choice values in the definition's
   order; an unanswered optional field is left out.
4. `undefined` names posted fields this version does not have: the form refuses them, nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from formdef.published import Definition
from project.text import clean_text

PREFIX = "f_"
RADIO_MAX = 5
TEXT_MAX = 1000  # a text field without its own maximum
NUMBER_DIGITS, NUMBER_PLACES = 15, 6  # a float (a JSON number) holds 15 significant digits exactly
YES, NO = "yes", "no"
KEPT = 64  # (version, language) pairs kept; more: the oldest are built again if asked
_built: dict[tuple[int, str], tuple[Definition, dict[str, forms.Field]]] = {}
_lock = threading.Lock()


def words(texts: dict | None, language: str) -> str:
    """Return a {language: text} dict's text in `language`, else in English, else any."""
    texts = texts or {}
    return texts.get(language) or texts.get("en") or next((t for t in texts.values() if t), "")


def build(definition: Definition) -> dict[str, forms.Field]:
    """Return the definition's form fields in the active language (built once per version and language)."""
    language = translation.get_language() or "en"
    key = (definition.id, language)
    held = _built.get(key)
    if held is not None and held[0] is definition:  # the very object: a test's forget() gives a new one
        return held[1]
    fields = build_uncached(definition, language)
    with _lock:
        if len(_built) >= KEPT:
            _built.clear()
        _built[key] = (definition, fields)
    return fields


def build_uncached(definition: Definition, language: str) -> dict[str, forms.Field]:
    """Return the definition's form fields in `language` (the admin's preview of unpublished rows uses this)."""
    fields = {PREFIX + spec["key"]: _field(spec, language) for spec in definition.fields}
    for name, field in fields.items():
        if field.help_text and not field.widget.use_fieldset:  # a fieldset says it itself (signup.html)
            field.widget.attrs["aria-describedby"] = f"id_{name}_help"
    return fields


def _field(spec: dict, language: str) -> forms.Field:
    label = words(spec["label"], language)
    if not spec["required"]:  # an optional field says so, as the form's own do ("Phone (optional)")
        with translation.override(language):
            label = translation.gettext("%(label)s (optional)") % {"label": label}
    common = {
        "label": label,
        "help_text": words(spec.get("help"), language),
        "required": bool(spec["required"]),
    }
    kind = spec["kind"]
    if kind == "text":
        return AnswerText(max_length=spec.get("max_length") or TEXT_MAX, **common)
    if kind == "number":
        low, high = (None if spec.get(end) is None else Decimal(spec[end]) for end in ("min", "max"))
        return forms.DecimalField(min_value=low, max_value=high, max_digits=NUMBER_DIGITS,
                                  decimal_places=NUMBER_PLACES, widget=forms.NumberInput(attrs={"step": "any"}),
                                  **common)  # fmt: skip
    if kind == "date":
        return forms.DateField(input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"},
                               format="%Y-%m-%d"), **common)  # fmt: skip
    if kind == "yesno":
        return forms.TypedChoiceField(choices=[(YES, _("Yes")), (NO, _("No"))], coerce=lambda v: v == YES,
                                      empty_value=None, widget=forms.RadioSelect, **common)  # fmt: skip
    choices = [(c["value"], words(c.get("label"), language)) for c in spec.get("choices") or []]
    if kind == "multichoice":
        return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
    if len(choices) <= RADIO_MAX:
        return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
    return forms.ChoiceField(choices=[("", "—"), *choices], **common)


class AnswerText(forms.CharField):
    """Free text by our text rules (NFC, single spaces, no control characters), its length checked after them."""

    def clean(self, value):
        value = super().clean(value)
        if value:
            value = clean_text(value, self.label)
            self.run_validators(value)  # NFC can lengthen text
        return value


def answers(definition: Definition, cleaned: dict) -> dict:
    """Return the typed JSON answers from a valid form's cleaned data (see the module docstring)."""
    result = {}
    for spec in definition.fields:
        value = cleaned.get(PREFIX + spec["key"])
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, list):
            order = [c["value"] for c in spec.get("choices") or []]
            value = sorted(set(value), key=order.index)
        result[spec["key"]] = value
    return result


def undefined(definition: Definition, posted_names) -> list[str]:
    """Return the posted field names that look like answers (PREFIX) but this version does not define."""
    defined = {PREFIX + spec["key"] for spec in definition.fields}
    return sorted({name for name in posted_names if name.startswith(PREFIX) and name not in defined})
