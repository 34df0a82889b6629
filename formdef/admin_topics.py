"""Staff admin for topics: per-language words with one input per language, public/hidden, order, members' counts.

1. Name, description and consent wording are {language: text} JSON in the row; the form shows one input per
   offered language (settings.LANGUAGES) and puts them back together. The model's clean() refuses a missing one.
2. Every save publishes a new form version (formdef.published.publish), after the row is saved.
3. A topic is never deleted here: people's memberships and their ledger name it (PROTECT). Untick "active"
   instead; it leaves the form and the preference centre's offer, and its members keep their rows.
4. The list shows each topic's members by state (confirmed, unconfirmed, withdrawn), counted by the database
   through the reverse relation users.SignupTopic.topic (formdef never imports users).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import get_language_info

from formdef import published
from formdef.models import Topic

WORDS = {"name": forms.CharField, "description": forms.CharField, "consent": forms.CharField}
WIDGETS = {"description": forms.Textarea(attrs={"rows": 2}), "consent": forms.Textarea(attrs={"rows": 2})}
HELP = {
    "name": "What the topic is called on the form and in emails.",
    "description": "One sentence under the name (optional: leave every language empty for none).",
    "consent": "What the person agrees to by ticking it. A changed wording gets a new version in the ledger.",
}


def _languages() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)


class _TopicForm(forms.ModelForm):
    """The topic's row, with its JSON words edited as one text input per language (declared by `_word_inputs`)."""

    class Meta:
        model = Topic
        fields = ["key", "public", "active", "position"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for what in WORDS:
            values = getattr(self.instance, what) or {}
            for code, _language in _languages():
                self.initial.setdefault(f"{what}_{code}", values.get(code, ""))
        if self.instance.pk:  # the key names the topic in stored memberships, exports and the API
            self.fields["key"].disabled = True

    def clean(self):
        cleaned = super().clean()
        for what in WORDS:
            texts = {code: " ".join((cleaned.get(f"{what}_{code}") or "").split()) for code, _name in _languages()}
            setattr(self.instance, what, texts if any(texts.values()) else {})
        return cleaned


def _word_inputs() -> dict[str, forms.Field]:
    """Return one optional input per word and language; the model's clean() says which are missing."""
    return {
        f"{what}_{code}": field_class(
            label=f"{what.capitalize()} ({get_language_info(code)['name']})",
            required=False,
            max_length=1000,
            widget=WIDGETS.get(what),
            help_text=HELP[what] if code == settings.LANGUAGE_CODE else "",
        )
        for what, field_class in WORDS.items()
        for code, _language in _languages()
    }


# Declared on the class (not added per instance): the admin builds its form from the fieldsets' names.
TopicForm = type("TopicForm", (_TopicForm,), _word_inputs())


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    form = TopicForm
    list_display = ["key", "english_name", "public", "active", "position", "confirmed", "unconfirmed", "withdrawn"]
    list_filter = ["public", "active"]
    ordering = ["position", "id"]
    readonly_fields = ["changed_at"]

    def get_fieldsets(self, request, obj=None):
        codes = [code for code, _name in _languages()]
        return [
            (None, {"fields": ["key", "public", "active", "position", "changed_at"]}),
            *((what.capitalize(), {"fields": [f"{what}_{code}" for code in codes]}) for what in WORDS),
        ]

    def get_queryset(self, request):
        active = Q(memberships__withdrawn_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_confirmed=Count("memberships", filter=active & Q(memberships__confirmed_at__isnull=False)),
                n_unconfirmed=Count("memberships", filter=active & Q(memberships__confirmed_at__isnull=True)),
                n_withdrawn=Count("memberships", filter=Q(memberships__withdrawn_at__isnull=False)),
            )
        )

    @admin.display(description="name (English)")
    def english_name(self, obj: Topic) -> str:
        return (obj.name or {}).get(settings.LANGUAGE_CODE, "")

    @admin.display(description="members confirmed", ordering="n_confirmed")
    def confirmed(self, obj: Topic) -> int:
        return obj.n_confirmed

    @admin.display(description="unconfirmed", ordering="n_unconfirmed")
    def unconfirmed(self, obj: Topic) -> int:
        return obj.n_unconfirmed

    @admin.display(description="withdrawn", ordering="n_withdrawn")
    def withdrawn(self, obj: Topic) -> int:
        return obj.n_withdrawn

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # memberships and the ledger name it: untick "active" instead

    def save_model(self, request, obj: Topic, form, change: bool) -> None:
        obj.changed_at = timezone.now()
        super().save_model(request, obj, form, change)
        published.publish(request.user.get_username())
