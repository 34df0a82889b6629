"""The second factor: enter a code, or enrol an authenticator app (TOTP) and get backup codes.

Enrolment keeps the new key in the session until a code from the app proves it was scanned, then, in one
transaction, replaces the user's authenticator and backup codes. Codes are checked by django-otp's devices,
which throttle wrong guesses (each failure doubles the wait) and accept a TOTP code or a backup code once.
"""

from __future__ import annotations

import functools
import logging
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, user_has_device, verify_token
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from staff import access
from staff.forms import CodeForm

logger = logging.getLogger("staff")

SETUP_KEY = "staff_otp_setup_key"  # the key being enrolled, in the session until it is confirmed
BACKUP_CODES = 10


def _signed_in_staff(view):
    """Let through a staff member who signed in with a password (the second factor may still be missing)."""

    @functools.wraps(view)
    @never_cache
    def wrapper(request, *args, **kwargs):
        if not access.is_staff_member(request.user):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return wrapper


@_signed_in_staff
def second_factor(request):
    """Ask for a code from the authenticator app or a backup code; enrolment when the user has neither."""
    user, next_url = request.user, _next(request)
    if not access.second_factor_required() or access.is_verified(user):
        return redirect(next_url)
    if not user_has_device(user):
        return redirect(_with_next("admin:second_factor_setup", next_url))
    form = CodeForm(request.POST or None)
    if form.is_valid():
        device = _verify(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            logger.info("staff user %s: second factor verified (%s)", user.pk, device.__class__.__name__)
            if not TOTPDevice.objects.devices_for_user(user, confirmed=True).exists():
                return redirect(_with_next("admin:second_factor_setup", next_url))  # came in with a backup code
            return redirect(next_url)
        logger.warning("staff user %s: wrong second-factor code", user.pk)
        form.add_error("code", "That code did not work. Codes from the app change every 30 seconds; after "
                               "several wrong codes each new try must wait longer.")  # fmt: skip
    return _render(request, "admin/staff/second_factor.html", {"form": form, "next": next_url,
                                                                "title": "Second factor"})  # fmt: skip


@_signed_in_staff
def setup(request):
    """Enrol an authenticator app: its QR code and key, then a code from it; show new backup codes once."""
    user, next_url = request.user, _next(request)
    if user_has_device(user) and not access.is_verified(user):
        return redirect(_with_next("admin:second_factor", next_url))  # prove the old factor first
    key = request.session.setdefault(SETUP_KEY, random_hex(20))
    device = TOTPDevice(user=user, key=key, name="authenticator")
    form = CodeForm(request.POST or None)
    if form.is_valid():
        totp = _totp(device, form.cleaned_data["code"])
        if totp is not None:
            device.confirmed, device.last_t = True, totp.t()
            codes = _replace_devices(user, device)
            otp_login(request, device)
            del request.session[SETUP_KEY]
            logger.info("staff user %s: authenticator enrolled, %d new backup codes", user.pk, len(codes))
            ctx = {"codes": codes, "next": next_url, "title": "Your backup codes"}
            return _render(request, "admin/staff/backup_codes.html", ctx)
        form.add_error("code", "That code did not match. Scan the QR code again, or type the key, and enter "
                               "the code the app shows now.")  # fmt: skip
    url = device.config_url
    ctx = {
        "form": form,
        "next": next_url,
        "title": "Set up your authenticator app",
        "qr_svg": segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff", title="QR code"),
        "secret": " ".join(_chunks(b32encode(unhexlify(key)).decode(), 4)),
        "otpauth_url": url,
    }
    return _render(request, "admin/staff/setup.html", ctx)


@require_POST
@_signed_in_staff
def leave(request):
    """Log out from a second-factor page (the admin's own logout is only for verified sessions)."""
    logout(request)
    return redirect("admin:login")


def _verify(user, code: str):
    """Return the device that accepts `code` (TOTP, or a backup code it then forgets), or None."""
    for device in devices_for_user(user):
        if isinstance(device, TOTPDevice) and not (code.isdigit() and len(code) == device.digits):
            continue
        verified = verify_token(user, device.persistent_id, code)  # throttled, under a row lock
        if verified is not None:
            return verified
    return None


def _totp(device: TOTPDevice, code: str) -> TOTP | None:
    """Check a code against the key being enrolled (this code or the one before, for a slow typist)."""
    if not code.isdigit():
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    return totp if totp.verify(int(code), tolerance=1) else None


@transaction.atomic
def _replace_devices(user, device: TOTPDevice) -> list[str]:
    """Make `device` the user's only authenticator, with a fresh set of backup codes; return the codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    device.save()
    backup = StaticDevice.objects.create(user=user, name="backup codes")
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=backup, token=code) for code in codes)
    return codes


def _render(request, template: str, ctx: dict) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), **ctx})


def _next(request) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure()):
        return url
    return reverse("admin:index")


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def staff_lockout(request, original_response=None, credentials=None):
    """django-axes' lockout page, with `Retry-After` (the cool-off: the lock lasts that long after the last try)."""
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    ctx = {"cooloff_timedelta": cool_off}
    response = TemplateResponse(request, settings.AXES_LOCKOUT_TEMPLATE, ctx, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()
