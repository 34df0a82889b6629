"""The integrations room of the admin, for superusers (the admin site itself asks every staff member for the
second factor: staff/access.py): webhook endpoints, the delivery log with every attempt, replay, events."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models, router
from django.template.response import TemplateResponse
from django.utils import timezone

from api import delivery, keys
from api.models import SCOPES, ApiAudit, ApiKey, Attempt, Delivery, Endpoint, Event


class SuperuserOnly:
    """Only superusers see or change anything here (the API's keys and the webhooks reach personal data)."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)


@admin.register(Endpoint)
class EndpointAdmin(SuperuserOnly, admin.ModelAdmin):
    """The secret is never on a page but once: right after the endpoint is added, and right after a rotation."""

    list_display = ["url", "enabled", "full_payload", "event_types", "failing_since", "disabled_reason"]
    fields = ["url", "description", "event_types", "full_payload", "enabled", "previous_secret_until",
              "disabled_reason", "failing_since"]  # fmt: skip
    readonly_fields = ["previous_secret_until", "disabled_reason", "failing_since"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["rotate_secret"]

    @admin.action(description="Rotate the secret (both sign for 24 hours)")
    def rotate_secret(self, request, queryset):
        shown = [(endpoint, endpoint.rotate_secret()) for endpoint in queryset.order_by("pk")]
        return self._secrets_page(request, shown, "Secrets rotated: the old ones sign for 24 more hours")

    def save_model(self, request, obj, form, change) -> None:
        if obj.enabled:
            obj.disabled_reason = ""
            if change and "enabled" in form.changed_data:
                obj.failing_since = None  # enabled again: a fresh start, not disabled again by the first failure
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets_page(request, [(obj, obj.secret)], "Endpoint added")

    def _secrets_page(self, request, shown: list, title: str) -> TemplateResponse:
        ctx = {**self.admin_site.each_context(request), "shown": shown, "title": title}
        response = TemplateResponse(request, "api/endpoint_secret.html", ctx)
        response["Cache-Control"] = "no-store"
        return response


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["at", "status_code", "latency_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "event_type", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at",
                    "delivered_at"]  # fmt: skip
    list_filter = ["status", "endpoint"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ["endpoint", "event", "status", "attempts", "next_attempt_at", "leased_until",
                       "last_status_code", "created_at", "delivered_at"]  # fmt: skip
    inlines = [AttemptInline]
    actions = ["replay"]

    @admin.display(description="event")
    def event_type(self, obj: Delivery) -> str:
        return f"{obj.event.type} #{obj.event.signup_id}"

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)  # the change page shows the attempts; nothing is editable

    @admin.action(description="Replay the selected deliveries (same webhook-id)")
    def replay(self, request, queryset) -> None:
        using = router.db_for_write(Delivery)
        done = sum(delivery.replay(pk, using) for pk in queryset.values_list("pk", flat=True))
        skipped = queryset.count() - done
        note = f" {skipped} running now, left alone." if skipped else ""
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(request, f"{done} delivery(ies) queued again.{note}", level)


@admin.register(Event)
class EventAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "type", "signup_id", "at", "fanned_out"]
    list_filter = ["type"]
    readonly_fields = ["type", "signup_id", "at", "fanned_out"]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(SuperuserOnly, admin.ModelAdmin):
    """Create (the key is shown once, on the page after the save), see, revoke; never edit a key's secret."""

    form = ApiKeyForm
    list_display = ["name", "prefix", "scopes", "created_by", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            request._new_api_key, obj.prefix, obj.hashed = keys.generate()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        ctx = {**self.admin_site.each_context(request), "key": obj, "token": request._new_api_key}
        response = TemplateResponse(request, "api/key_created.html", ctx)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys (at once, for good)")
    def revoke(self, request, queryset) -> None:
        done = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{done} key(s) revoked.")


@admin.register(ApiAudit)
class ApiAuditAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["at", "key_prefix", "action", "row_count", "filters"]
    list_filter = ["action"]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
