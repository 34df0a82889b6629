"""The second factor: enter a code, or enrol an authenticator app (TOTP) and get backup codes.

Who may enrol is staff/enrolment.py's policy: an account without a device gets a page saying to ask for an
enrolment link; the link (enrol_link, then enrol) opens enrolment in that session; so does a session verified
by the current factor. Enrolment keeps the new key in the session until a code from the app proves it was
scanned, then, in one transaction, replaces the user's authenticator and backup codes. Codes are checked by
django-otp's devices, which throttle wrong guesses (each failure doubles the wait) and accept a TOTP code or a
backup code once.
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

from staff import access, enrolment
from staff.forms import CodeForm
from staff.models import EnrolmentInvite

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
    """Ask for a code from the authenticator app or a backup code; without a device, say to ask for a link."""
    user, next_url = request.user, _next(request)
    if request.session.get(enrolment.PENDING_KEY):
        return redirect("admin:second_factor_enrol")  # came from an enrolment link, then signed in
    if not access.second_factor_required() or access.is_verified(user):
        return redirect(next_url)
    if not user_has_device(user):
        return _render(request, "admin/staff/no_device.html", {"title": "Ask for an enrolment link"}, status=403)
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


@never_cache
def enrol_link(request, token: str):
    """The emailed or printed link: check it, keep it in the session, go on to a URL without the token."""
    invite, reason = enrolment.find(token)
    if invite is None:
        return _invalid(request, reason)
    request.session[enrolment.PENDING_KEY] = invite.pk
    return redirect("admin:second_factor_enrol")


@never_cache
def enrol(request):
    """After the owner's password: a POST spends the link and opens enrolment in this session."""
    invite_id = request.session.get(enrolment.PENDING_KEY)
    invite = EnrolmentInvite.objects.live().select_related("user").filter(pk=invite_id).first() if invite_id else None
    if invite is None:
        request.session.pop(enrolment.PENDING_KEY, None)
        return _invalid(request, "used" if invite_id else "bad")
    user = request.user
    if not access.is_staff_member(user):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if user.pk != invite.user_id:
        return _invalid(request, "other_account", status=403)
    if request.method == "POST":
        del request.session[enrolment.PENDING_KEY]
        if not enrolment.spend(invite.pk, user):
            return _invalid(request, "used")
        request.session[enrolment.CLAIMED_KEY] = invite.pk
        return redirect("admin:second_factor_setup")
    ctx = {"title": "Set up your second factor", "username": user.get_username(), "replaces": user_has_device(user)}
    return _render(request, "admin/staff/enrol.html", ctx)


@_signed_in_staff
def setup(request):
    """Enrol an authenticator app: its QR code and key, then a code from it; show new backup codes once."""
    user, next_url = request.user, _next(request)
    by_invitation = enrolment.enrolment_open(request.session, user)
    if not by_invitation and not access.is_verified(user):
        return redirect(_with_next("admin:second_factor", next_url))  # a link, or the old factor, first
    key = request.session.setdefault(SETUP_KEY, random_hex(20))
    device = TOTPDevice(user=user, key=key, name="authenticator")
    form = CodeForm(request.POST or None)
    if form.is_valid():
        totp = _totp(device, form.cleaned_data["code"])
        if totp is not None:
            device.confirmed, device.last_t = True, totp.t()
            codes = _replace_devices(user, device, by_invitation)
            otp_login(request, device)
            for name in (SETUP_KEY, enrolment.CLAIMED_KEY):
                request.session.pop(name, None)
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


@transaction.atomic
def _verify(user, code: str):
    """Return the device that accepts `code` (TOTP, or a backup code it then forgets), or None.

    A backup code is spent in the same transaction that queues the notice to the other superusers.
    """
    for device in devices_for_user(user):
        if isinstance(device, TOTPDevice) and not (code.isdigit() and len(code) == device.digits):
            continue
        verified = verify_token(user, device.persistent_id, code)  # throttled, under a row lock
        if isinstance(verified, StaticDevice):
            enrolment.backup_code_used(user, left=verified.token_set.count())
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
def _replace_devices(user, device: TOTPDevice, by_invitation: bool) -> list[str]:
    """Make `device` the user's only authenticator, with a fresh set of backup codes; return the codes.

    The user's other enrolment links stop working, and the other superusers are told, in the same transaction.
    """
    EnrolmentInvite.objects.filter(user=user, used_at__isnull=True).delete()
    enrolment.enrolled(user, by_invitation=by_invitation)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    device.save()
    backup = StaticDevice.objects.create(user=user, name="backup codes")
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=backup, token=code) for code in codes)
    return codes


def _render(request, template: str, ctx: dict, status: int = 200) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), **ctx}, status=status)


def _invalid(request, reason: str, status: int | None = None) -> TemplateResponse:
    """The one page for a link that cannot be used: 404 not valid, 410 used or expired, 403 another account's."""
    status = status or (404 if reason == "bad" else 410)
    return _render(request, "admin/staff/enrol_invalid.html", {"title": "Enrolment link", "reason": reason}, status)


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
