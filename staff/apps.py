from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class StaffConfig(AppConfig):
    """The staff app itself: enrolment invitations (staff/models.py), its commands and admin."""

    name = "staff"
    default_auto_field = "django.db.models.BigAutoField"


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with our site (the second factor) as `admin.site`."""

    default_site = "staff.sites.StaffAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib.auth.signals import user_logged_in

        from staff.middleware import mark_login

        user_logged_in.connect(mark_login, dispatch_uid="staff.middleware.mark_login")
