"""The privacy page (/privacy/) and the site's name and tagline on every page: all from settings."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


def site(request: HttpRequest) -> dict:
    """Template context processor: what the list is and who keeps it (base.html, home, signup)."""
    return {"site_name": settings.SITE_NAME, "site_tagline": settings.SITE_TAGLINE}


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
