"""Request helpers shared by the apps.

The client's IP, by deployment (docs/deployment.md, "Which client IP the app sees"):
1. CLIENT_IP_HEADER set (private_ingress: API Gateway -> VPC Link -> NLB -> internal ALB): the header API
   Gateway sets from $context.identity.sourceIp, replacing any the caller sent. No X-Forwarded-For entry
   is the client's on that path (API Gateway adds none; the ALB appends the NLB's address). Its last
   entry counts, so even a header the caller sent and a proxy appended to cannot choose the result.
2. Otherwise (or when that header is absent: the request did not come through API Gateway), exactly
   TRUSTED_PROXY_COUNT hops of X-Forwarded-For from the right: the ALB appends the address it saw, and
   entries left of the trusted ones are whatever the client sent.
3. No proxies (TRUSTED_PROXY_COUNT=0): the peer address.
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP (rules above); None when the trusted value is not an address."""
    candidate = _from_client_ip_header(request)
    if candidate is None:
        candidate = _from_forwarded_for(request)
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _from_client_ip_header(request: HttpRequest) -> str | None:
    header = settings.CLIENT_IP_HEADER
    if not header:
        return None
    entries = [part.strip() for part in request.headers.get(header, "").split(",")]
    entries = [part for part in entries if part]
    return entries[-1] if entries else None


def _from_forwarded_for(request: HttpRequest) -> str:
    hops = settings.TRUSTED_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR", "")
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    return candidate


@functools.cache
def staff_prefixes() -> tuple[str, ...]:
    """Path prefixes of the staff pages: the admin (ADMIN_URL) and settings.STAFF_PATHS (/ops/).

    They run the staff-only middleware (project.middleware.StaffMiddleware) and stay English
    (project.i18n.LocaleMiddleware); the settings are read once per process.
    """
    return (f"/{settings.ADMIN_URL}", *settings.STAFF_PATHS)


@receiver(setting_changed)
def _staff_paths_changed(setting, **kwargs):
    if setting in ("ADMIN_URL", "STAFF_PATHS"):
        staff_prefixes.cache_clear()
