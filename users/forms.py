from __future__ import annotations

import copy
import functools

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from formdef import formfields, topicfields
from formdef.published import BARE, Definition
from project.text import clean_text
from users import consent
from users.consent import CONSENT_TEXT

HONEYPOT_FIELD = "website"


def country_choices() -> list[tuple[str, str]]:
    """Return the country options in the active language, sorted in it (django-countries translates them)."""
    return _country_choices(translation.get_language() or "en")


@functools.cache
def _country_choices(language: str) -> list[tuple[str, str]]:
    """Build the options once per process and language (django-countries rebuilds its sorted list per use)."""
    return [("", "—"), *((code, str(name)) for code, name in countries)]


class CountryField(forms.ChoiceField):
    def valid_value(self, value: str) -> bool:
        return value in _country_codes()  # a set look-up, not a walk through 250 choices


class CountrySelect(forms.Select):
    """Django's Select with the same HTML, its options made once per language.

    Rendered by Django's templates, an option at a time, the ~250 options were 17 of the signup page's 18 ms of
    CPU (and of its 400 and 429 answers, which show the form again). Only a valid country code is ever marked
    selected: a forged value marks none, as Django's own widget does.
    """

    def render(self, name, value, attrs=None, renderer=None):
        options = _country_options(translation.get_language() or "en")
        chosen = "" if value is None else str(value)
        if chosen in _country_codes():  # "" included: the empty choice, as Django marks it
            options = options.replace(f'<option value="{chosen}">', f'<option value="{chosen}" selected>', 1)
        # Escaped by format_html_join (`_country_options`); the replacement adds only one of our own codes.
        options = mark_safe(options)  # noqa: S308
        return format_html(
            '<select name="{}"{}>{}\n</select>', name, _attrs(self.build_attrs(self.attrs, attrs)), options
        )


def _attrs(attrs: dict) -> str:
    """Attributes as Django's widgets/attrs.html writes them: in order, True as a bare name, False left out."""
    shown = ((k, "" if v is True else format_html('="{}"', v)) for k, v in attrs.items() if v is not False)
    return format_html_join("", " {}{}", shown)


@functools.cache
def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _ in country_choices())


@functools.cache
def _country_options(language: str) -> str:
    """The options of the country list in `language`, as Django's select.html lays them out (none selected)."""
    return format_html_join("", '\n  <option value="{}">{}</option>\n', _country_choices(language))


class SignupForm(forms.Form):
    full_name = forms.CharField(
        label=_("Full name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": _("Please tell us your name."),
                        "max_length": _("Please keep your name under %(limit_value)d characters.")},
    )  # fmt: skip
    email = forms.EmailField(
        label=_("Email address"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Please give an email address."),
                        "invalid": _("Enter a valid email address, like name@example.com.")},
    )  # fmt: skip
    phone = forms.CharField(
        label=_("Phone (optional)"), max_length=32, required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )  # fmt: skip
    country = CountryField(
        label=_("Country (optional)"), choices=country_choices, required=False,
        widget=CountrySelect(attrs={"autocomplete": "country"}),
    )  # fmt: skip
    # Required: the form is a signup to hear from us, so a signup is a consent (users/models.py STATUSES).
    consent = forms.BooleanField(
        label=CONSENT_TEXT,
        error_messages={"required": _("Please tick the box: we can only sign you up if we may email you.")},
    )
    # Hidden from people by CSS and from assistive technology; bots that fill every input fill it.
    website = forms.CharField(required=False, max_length=200, label=_("Leave this field empty"))

    FIELDS = ("full_name", "email", "phone", "country", "consent")

    def __init__(self, *args, definition: Definition = BARE, **kwargs) -> None:
        # Django deep-copies every field for each form so that a form may change its own. This one changes a
        # field only when it has errors (full_clean): until then it shares the class's, read-only, and the
        # fields staff defined (formdef/formfields.py: built once per published version and language).
        self.base_fields = {}
        super().__init__(*args, **kwargs)
        del self.base_fields
        # The published version this form is rendered with and judged by (its id is the hidden form_version):
        # the fields staff defined (formdef/formfields.py) and its topics (formdef/topicfields.py), each built
        # once per version and language and shared like the class's own.
        self.definition = definition
        self.fields = {**type(self).base_fields, **formfields.build(definition), **topicfields.build(definition)}
        self._shared_fields = self.fields

    def full_clean(self) -> None:
        super().full_clean()
        if self.errors:  # about to mark fields: this form's own copies, and bound fields made from them
            self.fields, self._bound_fields_cache = copy.deepcopy(self._shared_fields), {}
        for name in self.errors:  # screen readers announce the error with its field
            if name in self.fields:
                self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}_error"

    @property
    def topic_options(self) -> list[dict]:
        """The topic checkboxes the template shows above the consent box (formdef/topicfields.py)."""
        getlist = getattr(self.data, "getlist", None)
        if self.is_bound:
            ticked = getlist(topicfields.FIELD) if getlist else []
        else:  # the language switch (users/language.py) hands back what was ticked as initial data
            ticked = self.initial.get(topicfields.FIELD) or []
        return topicfields.options(self.definition, ticked)

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get(HONEYPOT_FIELD))

    def clean_full_name(self) -> str:
        name = clean_text(self.cleaned_data["full_name"], _("Your name"))
        self.fields["full_name"].run_validators(name)  # again after NFC, which can lengthen text (U+0958)
        if not any(ch.isalpha() for ch in name):
            raise ValidationError(_("Please enter your name using letters."))
        return name

    def clean_email(self) -> str:
        email = clean_text(self.cleaned_data["email"], _("The email address"))
        local, _at, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
        self.fields["email"].run_validators(email)  # length and syntax of what is stored, after NFC
        return email

    def clean(self):
        cleaned = super().clean()
        if self.is_bound and formfields.undefined(self.definition, self.data):
            # An answer to a question this form does not ask (a forged or stale form): nothing is stored.
            raise ValidationError(_("This form does not ask some of what was sent: please reload the page and "
                                    "send it again."), code="undefined")  # fmt: skip
        raw_phone = (cleaned.get("phone") or "").strip()
        if raw_phone and "phone" not in self.errors:
            cleaned["phone"] = self._normalise_phone(raw_phone, cleaned.get("country") or None)
        return cleaned

    def _normalise_phone(self, raw: str, region: str | None) -> str:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            if region:
                self.add_error("phone", _("Enter a valid phone number."))
            else:
                self.add_error("phone", _("Enter a valid phone number. Include the country code "
                                          "(e.g. +44 20 7946 0958) or pick your country."))  # fmt: skip
            return raw
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def to_signup_fields(self, *, ip: str | None, user_agent: str) -> dict:
        """Return the model fields for a new record: consent provenance, the form's language, request metadata."""
        data = {name: self.cleaned_data[name] for name in self.FIELDS}
        data.update(consent_at=timezone.now(), consent_version=consent.current_version())  # always given
        data.update(answers=formfields.answers(self.definition, self.cleaned_data), form_version=self.definition.id)
        ua = "".join(ch for ch in user_agent if ch.isprintable())[:512]
        # Not a column: (topic id, wording version) pairs, stored with the row by users.signup_store.store(topics=).
        data["topics"] = topicfields.chosen(self.definition, self.cleaned_data.get(topicfields.FIELD, []))
        return {**data, "language": translation.get_language() or "en", "ip_address": ip, "user_agent": ua}
