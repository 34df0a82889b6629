"""Staff admin for the audit records: who exported what (SignupExport) and who erased whom (Erasure). Read-only.

Registered when users.admin (which the admin autodiscovers) imports this module.
"""

from __future__ import annotations

from django.contrib import admin

from users.models import Erasure, SignupExport


class ReadOnlyAuditAdmin(admin.ModelAdmin):
    """Audit records: visible to staff with the view permission, changed by nobody."""

    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SignupExport)
class SignupExportAdmin(ReadOnlyAuditAdmin):
    list_display = ["started_at", "username", "kind", "row_count", "complete", "filters"]
    list_filter = ["kind", "complete"]
    search_fields = ["username"]


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAuditAdmin):
    list_display = ["erased_at", "signup_id", "username"]
    search_fields = ["=signup_id", "username"]
