"""The person's own pages, reached by signed links in their emails (no accounts).

1. A GET on any emailed link changes nothing (mail scanners open links): it shows a page with a button;
   only the POST acts. The one exception to "needs our CSRF token" is the RFC 8058 one-click
   unsubscribe POST, authenticated by its token alone.
2. A bad link (tampered, expired, used, for an erased person) gets one friendly 4xx page offering a new
   link: 400 invalid, 410 expired, 409 already used. Never a 5xx.
3. Every read and write here uses the primary: the person acts on what they just did.
4. "Send me my link" answers the same whatever the address: known or not, rate-limited or not (per address,
   silently); only the per-IP limit shows, as it reveals nothing about anybody.
"""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.db import router, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from project import ratelimit
from project.db.state import use_primary
from project.http import client_ip
from users import consent, export, tokens
from users.erasure import erase_signup
from users.forms import SignupForm, clean_text
from users.models import ConsentEvent, Signup
from users.ratelimits import IP_SCOPE, LINK_SCOPE, address_key
from users.stats import invalidate_signup_count
from users.tasks import enqueue_email

logger = logging.getLogger("users")

BAD_LINK_STATUS = {"invalid": 400, "expired": 410, "used": 409}


class LinkForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                             error_messages=SignupForm.base_fields["email"].error_messages)  # fmt: skip

    def clean_email(self) -> str:
        local, _at, domain = clean_text(self.cleaned_data["email"], _("The email address")).rpartition("@")
        return f"{local}@{domain.lower()}"


# --- helpers ----------------------------------------------------------------------------------------
def _bad_link(request, reason: str):
    ctx = {"reason": reason}
    return render(request, "users/bad_link.html", ctx, status=BAD_LINK_STATUS[reason])


def _person(purpose: str, token: str, *, lock: bool = False) -> tuple[Signup | None, str]:
    """Return the signup this token opens (row-locked when `lock`, inside a transaction), or (None, reason)."""
    try:
        claim = tokens.read(purpose, token)
    except tokens.BadToken as exc:
        return None, exc.reason
    rows = Signup.objects.using(router.db_for_write(Signup))
    signup = (rows.select_for_update() if lock else rows).filter(pk=claim.signup_id).first()
    if signup is None or signup.is_erased or not tokens.matches(purpose, claim, signup.email):
        return None, "invalid"
    return signup, ""


def _withdraw(signup: Signup, ip: str | None) -> bool:
    """Withdraw consent now (the caller holds the row lock); False when it was withdrawn already."""
    if signup.withdrawn_at is not None:
        return False
    signup.withdrawn_at, signup.consent = timezone.now(), False
    signup.save(update_fields=["withdrawn_at", "consent"])
    ConsentEvent.objects.using(signup._state.db).create(signup=signup, kind=ConsentEvent.WITHDRAWN, ip=ip,
                                                        wording_version=signup.consent_version)  # fmt: skip
    transaction.on_commit(invalidate_signup_count, using=signup._state.db)
    logger.info("signup %s: consent withdrawn", signup.pk)
    return True


def _manage_url(signup: Signup) -> str:
    return reverse("users:manage", args=[tokens.make(tokens.MANAGE, signup.pk, signup.email)])


# --- confirm (double opt-in) ---------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token: str):
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        signup, problem = _person(tokens.CONFIRM, token, lock=request.method == "POST")
        if signup is None:
            return _bad_link(request, problem)
        if signup.is_confirmed or signup.withdrawn_at is not None:
            return _bad_link(request, "used")
        if request.method == "GET":
            return render(request, "users/confirm.html", {"signup": signup})
        ip = client_ip(request)
        signup.confirmed_at, signup.confirmed_ip = timezone.now(), ip
        signup.save(update_fields=["confirmed_at", "confirmed_ip"])
        wording = signup.consent_version or consent.version(signup.language)
        ConsentEvent.objects.using(using).create(signup=signup, kind=ConsentEvent.CONFIRMED, ip=ip,
                                                 wording_version=wording)  # fmt: skip
        transaction.on_commit(invalidate_signup_count, using=using)
    logger.info("signup %s: address confirmed", signup.pk)
    return redirect(_manage_url(signup) + "?confirmed=1")


# --- manage my data --------------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET"])
def manage(request, token: str):
    with use_primary():
        signup, problem = _person(tokens.MANAGE, token)
        if signup is None:
            return _bad_link(request, problem)
        ctx = {"signup": signup, "events": list(signup.events.all()), "token": token,
               "consent_words": consent.wording(signup.consent_version) if signup.consent_version else None,
               "just_confirmed": "confirmed" in request.GET, "just_withdrawn": "withdrawn" in request.GET}  # fmt: skip
    return render(request, "users/manage.html", ctx)


@never_cache
@require_POST
def download(request, token: str):
    with use_primary():
        signup, problem = _person(tokens.MANAGE, token)
        if signup is None:
            return _bad_link(request, problem)
        body = export.person_json(signup)
    logger.info("signup %s: the person downloaded their data", signup.pk)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@never_cache
@require_POST
def withdraw(request, token: str):
    with transaction.atomic(using=router.db_for_write(Signup)):
        signup, problem = _person(tokens.MANAGE, token, lock=True)
        if signup is None:
            return _bad_link(request, problem)
        _withdraw(signup, client_ip(request))
    return redirect(reverse("users:manage", args=[token]) + "?withdrawn=1")


@never_cache
@require_http_methods(["GET", "POST"])
def erase(request, token: str):
    with use_primary():
        signup, problem = _person(tokens.MANAGE, token)
    if signup is None:
        return _bad_link(request, problem)
    if request.method == "GET":
        return render(request, "users/erase.html", {"signup": signup, "token": token})
    erase_signup(signup.pk, None, reason="erased")
    return redirect("users:erased")  # post/redirect/get: a reload does not post again


@never_cache
def erased(request):
    return render(request, "users/erased.html", {})


# --- one-click unsubscribe (RFC 8058) ---------------------------------------------------------------------
@never_cache
@csrf_exempt  # mail providers POST here without our cookie; the signed token is the authentication
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    with transaction.atomic(using=router.db_for_write(Signup)):
        signup, problem = _person(tokens.UNSUBSCRIBE, token, lock=request.method == "POST")
        if signup is None:
            return _bad_link(request, problem)
        if request.method == "POST":
            _withdraw(signup, client_ip(request))
    ctx = {"signup": signup, "done": request.method == "POST", "manage_url": _manage_url(signup)}
    return render(request, "users/unsubscribe.html", ctx)


# --- send me my link ---------------------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
def send_link(request):
    form = LinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        refused = ratelimit.refuse_client(request, IP_SCOPE, settings.LINK_RATE_LIMIT_IP, "users/send_link.html",
                                          {"form": form})  # fmt: skip
        if refused:
            return refused
        if form.is_valid():
            _queue_link(form.cleaned_data["email"])
            return redirect("users:link_sent")
    return render(request, "users/send_link.html", {"form": form}, status=400 if form.errors else 200)


def _queue_link(address: str) -> None:
    """Queue the manage link for this address if we hold it and its per-address limit allows; say nothing."""
    limit, window = settings.LINK_RATE_LIMIT_ADDRESS
    allowed, _ = ratelimit.hit(LINK_SCOPE, address_key(address), limit, window)
    if not allowed:
        logger.info("send-link: per-address limit reached, nothing sent")
        return
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        rows = Signup.objects.using(using).alias(address=Lower("email"))  # the unique index's expression
        signup = rows.filter(address=Lower(Value(address)), email_blocked_at__isnull=True).first()
        if signup is not None and not signup.is_erased:
            enqueue_email(signup.pk, "link")


@never_cache
def link_sent(request):
    return render(request, "users/link_sent.html", {})
