"""What staff define on the public form beyond the fixed fields: their own fields, and topics to choose.

Staff edit Field and Topic rows; the public form never reads them. Each change publishes a FormVersion
(formdef/published.py): an immutable snapshot of every active field and topic, in every language. A form is
rendered from a version and its submission is judged by that same version, which the signup keeps
(Signup.form_version), as it keeps the consent wording's version.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import models
from django.utils import timezone


def _translations_cover(value: dict, what: str, *, required: bool = True) -> None:
    """Refuse a {language: text} dict that lacks one of the offered languages (or, optional, is all empty)."""
    if not isinstance(value, dict):
        raise ValidationError(f"{what}: a text for each language is expected")
    texts = {lang: (value.get(lang) or "").strip() for lang, _name in settings.LANGUAGES}
    if not required and not any(texts.values()):
        return
    missing = [lang for lang, text in texts.items() if not text]
    if missing:
        raise ValidationError(f"{what}: missing in {', '.join(missing)}")


class Field(models.Model):
    """A question staff added to the signup form, typed, with its words in every offered language."""

    TEXT, NUMBER, CHOICE, MULTICHOICE, YESNO, DATE = "text", "number", "choice", "multichoice", "yesno", "date"
    KINDS = [(TEXT, "text"), (NUMBER, "number"), (CHOICE, "single choice"), (MULTICHOICE, "multiple choice"),
             (YESNO, "yes/no"), (DATE, "date")]  # fmt: skip

    # The answer's name in storage, exports and the API: fixed once answers exist (a new key is a new field).
    key = models.SlugField(max_length=40, unique=True, validators=[validate_slug])
    kind = models.CharField(max_length=12, choices=KINDS)
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the form, after the fixed fields")
    # Off: no longer on the form; the answers people gave stay until they are erased or purged.
    active = models.BooleanField(default=True)
    label = models.JSONField(default=dict, help_text='{"en": "Company", "de": "Firma", ...}')
    help_text = models.JSONField(default=dict, blank=True)
    # Single and multiple choice: [{"value": "press", "label": {"en": "Press", ...}}, ...]; values are stored.
    choices = models.JSONField(default=list, blank=True)
    max_length = models.PositiveIntegerField(null=True, blank=True, help_text="Text: at most this many characters")
    min_value = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    max_value = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        _translations_cover(self.label, "label")
        _translations_cover(self.help_text or {}, "help text", required=False)
        if self.kind in {self.CHOICE, self.MULTICHOICE}:
            if not isinstance(self.choices, list) or not self.choices:
                raise ValidationError({"choices": "a choice field needs at least one choice"})
            values = [c.get("value") if isinstance(c, dict) else None for c in self.choices]
            if any(not isinstance(v, str) or not v for v in values) or len(set(values)) != len(values):
                raise ValidationError({"choices": "each choice needs its own non-empty value"})
            for choice in self.choices:
                _translations_cover(choice.get("label"), f"choice {choice['value']}")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValidationError({"max_value": "the maximum is below the minimum"})


class Topic(models.Model):
    """A list people can join from the form (newsletter, product updates, events), with its own consent words."""

    key = models.SlugField(max_length=40, unique=True, validators=[validate_slug])
    # Public topics are offered on the form; hidden ones are joined another way (import, API) and still listed
    # on the person's page once they are in them.
    public = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    name = models.JSONField(default=dict, help_text='{"en": "Newsletter", ...}')
    description = models.JSONField(default=dict, blank=True)
    # What the person agrees to by ticking it, per language: its version is kept with each consent event.
    consent = models.JSONField(default=dict)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        _translations_cover(self.name, "name")
        _translations_cover(self.description or {}, "description", required=False)
        _translations_cover(self.consent, "consent wording")


class FormVersion(models.Model):
    """An immutable snapshot of the form's fields and topics (formdef/published.py builds and reads it)."""

    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.CharField(max_length=150)
    snapshot = models.JSONField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"form version {self.pk} by {self.published_by} at {self.published_at:%Y-%m-%d %H:%M}"
