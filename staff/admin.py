"""Staff accounts in the admin: a verified superuser's "send enrolment link"; authenticator devices read-only.

Devices are listed and may be deleted (forcing a new enrolment), never added or edited here: an authenticator
is enrolled only through staff/enrolment.py, and OTP_ADMIN_HIDE_SENSITIVE_DATA keeps keys and codes out of view.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff import access, enrolment

User = get_user_model()


class StaffUserAdmin(UserAdmin):
    actions = ["send_enrolment_link"]

    @admin.action(description="Send enrolment link", permissions=["enrol"])
    def send_enrolment_link(self, request, queryset):
        sent = skipped = 0
        for user in queryset:
            if user.is_active and user.is_staff and user.email:
                enrolment.invite(user, request.user.get_username(), email=True)
                sent += 1
            else:
                skipped += 1
        self.message_user(request, f"Enrolment link queued for {sent} account(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: not active staff, or no email address.", messages.WARNING)

    def has_enrol_permission(self, request) -> bool:
        """Only a superuser whose session passed the second factor."""
        return request.user.is_superuser and access.is_verified_staff(request.user)


class ReadOnlyDevice:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class StaffTOTPDeviceAdmin(ReadOnlyDevice, TOTPDeviceAdmin):
    pass


class StaffStaticDeviceAdmin(ReadOnlyDevice, StaticDeviceAdmin):
    pass


for model, model_admin in ((User, StaffUserAdmin), (TOTPDevice, StaffTOTPDeviceAdmin),
                           (StaticDevice, StaffStaticDeviceAdmin)):  # fmt: skip
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
