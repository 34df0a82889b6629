from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with our site (the second factor) as `admin.site`."""

    default_site = "staff.sites.StaffAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib.auth.signals import user_logged_in

        from staff.middleware import mark_login

        user_logged_in.connect(mark_login, dispatch_uid="staff.middleware.mark_login")
