from django.contrib import admin

from users.models import Signup

COLLECTED_FIELDS = [
    "full_name", "email", "phone", "country", "consent", "consent_at", "consent_version",
    "created_at", "ip_address", "user_agent",
]  # fmt: skip


@admin.register(Signup)
class SignupAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "country", "consent", "created_at"]
    list_filter = [("created_at", admin.DateFieldListFilter), "country", "consent"]
    search_fields = ["full_name", "email"]
    readonly_fields = COLLECTED_FIELDS
    fields = COLLECTED_FIELDS
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # records come from the public form only
