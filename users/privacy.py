"""The privacy page (/privacy/) and the site's name and tagline on every page: all from settings."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_safe

# settings.SITE_TAGLINE's default, in the catalogues; a tagline of one's own shows as set (or add it to them).
DEFAULT_TAGLINE = gettext_noop("News about our service, a few times a year.")


def tagline() -> str:
    """Return SITE_TAGLINE in the active language when the catalogues have it."""
    return gettext(settings.SITE_TAGLINE) if settings.SITE_TAGLINE else ""


def site(request: HttpRequest) -> dict:
    """Template context processor: what the list is and who keeps it (base.html, home, signup)."""
    return {"site_name": settings.SITE_NAME, "site_tagline": tagline()}


@require_safe
def privacy(request: HttpRequest) -> HttpResponse:
    """Say who keeps which data, why, where, and for how long."""
    ctx = {
        "data_controller": settings.DATA_CONTROLLER,
        "privacy_contact": settings.PRIVACY_CONTACT,
        "aws_region": settings.AWS_REGION,
        "confirm_days": settings.CONFIRM_TTL // 86400,
        "manage_days": settings.MANAGE_TTL // 86400,
        "unconfirmed_days": settings.RETENTION_UNCONFIRMED_DAYS,
        "network_days": settings.RETENTION_NETWORK_DAYS,
        "withdrawn_days": settings.RETENTION_WITHDRAWN_DAYS,
        "log_days": settings.LOG_RETENTION_DAYS,
    }
    return render(request, "users/privacy.html", ctx)
