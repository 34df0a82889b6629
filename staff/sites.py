"""The admin site: Django's, with the second factor of staff/access.py in front of every page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path, reverse

from staff import access, lockout, views


class StaffAdminSite(admin.AdminSite):
    site_header = "Signups — staff"
    site_title = "Signups admin"
    # The app list repeated beside every page takes 300 px the changelist's columns need at 1280 px; the
    # breadcrumbs and the index lead to the same places.
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        return access.is_verified_staff(request.user)

    def login(self, request, extra_context=None):
        """Django's login (axes counts its failures), then on to the second factor when it is still missing."""
        if request.method == "GET" and access.needs_second_factor(request.user):
            return redirect(_second_factor_url(request.GET.get("next", "")))
        if request.method == "POST" and lockout.username_locked(request.POST.get("username", "")):
            return views.staff_lockout(request)  # sprayed from many addresses: no password is checked
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and access.needs_second_factor(request.user):
            return redirect(_second_factor_url(response["Location"]))  # the password was right
        return response

    def get_urls(self):
        return [
            path("second-factor/", views.second_factor, name="second_factor"),
            path("second-factor/setup/", views.setup, name="second_factor_setup"),
            path("second-factor/enrol/", views.enrol, name="second_factor_enrol"),
            path("second-factor/enrol/<str:token>/", views.enrol_link, name="second_factor_enrol_link"),
            path("second-factor/logout/", views.leave, name="second_factor_logout"),
            *super().get_urls(),
        ]


def _second_factor_url(next_url: str) -> str:
    return reverse("admin:second_factor") + ("?" + urlencode({"next": next_url}) if next_url else "")
