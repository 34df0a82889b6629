"""Staff define the signup form's own fields here; every saved change publishes a new form version.

1. One input per language for the label and the help text, and the choices as lines of
   "value | English | Deutsch | ..." (FieldForm turns them into the model's per-language JSON).
2. Order (position) and the active switch are edited in the list too; switching a field off keeps the answers
   people gave (they stay until the person is erased or purged).
3. Saving, deleting, reordering or switching fields on or off publishes (formdef/published.py): the public
   form shows the change within a second and every form already open is still judged by what it showed.
4. Preview: the form as these rows would render it, in every language, before anything is published: from the
   change page ("Preview" posts the unsaved edit: it is saved in a transaction that is rolled back), and from
   the list (the rows as they are).
5. The key and the kind are fixed once a field is saved: answers are stored under the key, typed by the kind
   (a new key is a new field).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import router, transaction
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation

from formdef import formfields, published
from formdef.models import Field, FormVersion

CHOICE_SEPARATOR = "|"


def _languages() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)


class FieldForm(forms.ModelForm):
    """The Field row with its per-language JSON as one input per language, and choices as lines of text."""

    choices_text = forms.CharField(
        label="Choices", required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="Single and multiple choice: one choice a line, its stored value then its label in each "
                  "language, separated by |, e.g. <code>press | Press | Presse | Presse | Prensa</code> "
                  "(value, then " + ", ".join(name for _code, name in settings.LANGUAGES) + ").",
    )  # fmt: skip

    class Meta:
        model = Field
        fields = ["key", "kind", "required", "position", "active", "max_length", "min_value", "max_value"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        label, help_text = self.instance.label or {}, self.instance.help_text or {}
        for code, name in _languages():
            self.fields[f"label_{code}"] = forms.CharField(
                label=f"Label ({name})", max_length=200, initial=label.get(code, "")
            )
        for code, name in _languages():
            self.fields[f"help_{code}"] = forms.CharField(
                label=f"Help text ({name})", max_length=500, required=False, initial=help_text.get(code, "")
            )
        self.fields["choices_text"].initial = "\n".join(
            CHOICE_SEPARATOR.join(
                [c.get("value", ""), *(c.get("label", {}).get(code, "") for code, _n in _languages())]
            )
            for c in self.instance.choices or []
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        codes = [code for code, _name in _languages()]
        self.instance.label = {code: (cleaned.get(f"label_{code}") or "").strip() for code in codes}
        help_texts = {code: (cleaned.get(f"help_{code}") or "").strip() for code in codes}
        self.instance.help_text = help_texts if any(help_texts.values()) else {}
        self.instance.choices = self._choices(cleaned.get("choices_text") or "", codes)
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        # The model's clean() names its own fields (choices, label): shown here on the inputs that edit them.
        if hasattr(errors, "error_dict"):
            mapped: dict[str, list] = {}
            for name, found in errors.error_dict.items():
                target = "choices_text" if name == "choices" else name
                mapped.setdefault(target if target in self.fields else NON_FIELD_ERRORS, []).extend(found)
            errors = ValidationError(mapped)
        super()._update_errors(errors)

    def _choices(self, text: str, codes: list[str]) -> list[dict]:
        choices = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split(CHOICE_SEPARATOR)]
            if len(parts) != 1 + len(codes):
                raise ValidationError({"choices_text": f"line {number}: a value and {len(codes)} labels expected"})
            if not parts[0].replace("-", "").replace("_", "").isalnum() or not parts[0].isascii():
                raise ValidationError({"choices_text": f"line {number}: the value is letters, digits, - and _"})
            choices.append({"value": parts[0], "label": dict(zip(codes, parts[1:], strict=True))})
        return choices


@admin.register(Field)
class FieldAdmin(admin.ModelAdmin):
    form = FieldForm
    list_display = ["key", "english_label", "kind", "required", "position", "active"]
    list_editable = ["position", "active"]
    list_filter = ["active", "kind"]
    search_fields = ["key"]
    actions = ["switch_on", "switch_off"]
    change_list_template = "admin/formdef/field/change_list.html"
    change_form_template = "admin/formdef/field/change_form.html"

    @admin.display(description="label (English)")
    def english_label(self, obj: Field) -> str:
        return formfields.words(obj.label, "en")

    def get_fieldsets(self, request, obj=None):
        codes = [code for code, _name in _languages()]
        return [
            (None, {"fields": ["key", "kind", "required", "position", "active"]}),
            ("Label, in every language", {"fields": [f"label_{code}" for code in codes]}),
            ("Help text (optional; in every language if given)", {"fields": [f"help_{code}" for code in codes]}),
            ("Choices", {"fields": ["choices_text"]}),
            ("Limits", {"fields": ["max_length", "min_value", "max_value"],
                        "description": "Text: the most characters. Number: the range."}),
        ]  # fmt: skip

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The per-language inputs are added by FieldForm itself (one per offered language), not model fields.
        names = kwargs.get("fields") or flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in names if not name.startswith(("label_", "help_"))]
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["key", "kind"] if obj is not None and obj.pk else []

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        published.publish(request.user.get_username())

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        published.publish(request.user.get_username())

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        published.publish(request.user.get_username())

    @admin.action(description="Show the selected fields on the form", permissions=["change"])
    def switch_on(self, request, queryset) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Take the selected fields off the form (their answers are kept)", permissions=["change"])
    def switch_off(self, request, queryset) -> None:
        self._switch(request, queryset, False)

    def _switch(self, request, queryset, active: bool) -> None:
        changed = queryset.exclude(active=active).update(active=active)
        if changed:
            published.publish(request.user.get_username())
        self.message_user(request, f"{changed} field(s) {'on' if active else 'off'} the form; published.")

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="formdef_field_preview"), *super().get_urls()]

    def preview_view(self, request):
        """Show the form as the rows would render it, in each language (with the posted, unsaved edit)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        errors = None
        if request.method == "POST":
            if not self.has_change_permission(request) and not self.has_add_permission(request):
                raise PermissionDenied
            snapshot, errors = self._snapshot_with_edit(request)
        else:
            snapshot = published.snapshot(router.db_for_write(Field))
        definition = published.Definition.from_snapshot(-1, snapshot)
        ctx = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Preview of the signup form's own fields",
            "errors": errors,
            "previews": [(code, name, _preview_form(definition, code)) for code, name in _languages()],
            "published_id": published.current().id,
            "list_url": reverse("admin:formdef_field_changelist"),
        }
        return TemplateResponse(request, "admin/formdef/field/preview.html", ctx)

    def _snapshot_with_edit(self, request) -> tuple[dict, object]:
        object_id = request.POST.get("object_id", "")
        instance = Field.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        data = request.POST.copy()
        if instance is not None:  # fixed once saved: not among the edit page's inputs
            data["key"], data["kind"] = instance.key, instance.kind
        form = FieldForm(data, instance=instance or Field())
        if not form.is_valid():
            return published.snapshot(router.db_for_write(Field)), form.errors
        using = router.db_for_write(Field)
        with transaction.atomic(using=using):
            form.save()
            snapshot = published.snapshot(using)  # with the edit, then none of it is kept
            transaction.set_rollback(True, using=using)
        return snapshot, None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "preview_url": reverse("admin:formdef_field_preview")}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET" and not published.current().id and Field.objects.exists():
            messages.warning(request, "Nothing is published yet: save a field to publish the form.")
        extra_context = {**(extra_context or {}), "preview_url": reverse("admin:formdef_field_preview")}
        return super().changelist_view(request, extra_context)


@admin.register(FormVersion)
class FormVersionAdmin(admin.ModelAdmin):
    """Every published version, read-only: who published what when (a signup keeps the id it answered)."""

    list_display = ["id", "published_at", "published_by", "field_keys"]
    fields = readonly_fields = ["id", "published_at", "published_by", "snapshot"]

    @admin.display(description="fields")
    def field_keys(self, obj: FormVersion) -> str:
        return ", ".join(f["key"] for f in obj.snapshot.get("fields", ())) or "-"

    def has_add_permission(self, request) -> bool:
        return False  # written by publishing only

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # immutable: forms already open are judged by it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _PreviewForm(forms.Form):
    pass


def _preview_form(definition: published.Definition, language: str) -> str:
    """Return one language's rendering of the defined fields, as the public form renders them."""
    with translation.override(language):
        form = _PreviewForm()
        form.fields = formfields.build_uncached(definition, language)
        return render_to_string("admin/formdef/field/_preview_form.html", {"form": form})
