from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_http_methods

from project import ratelimit
from project.http import client_ip
from project.middleware import database_unavailable
from users.forms import SignupForm
from users.models import Signup
from users.stats import signup_count

logger = logging.getLogger("users")

THANKS_COOKIE = "signup_thanks"
THANKS_SALT = "users.thanks"
THANKS_MAX_AGE = 3600


@cache_control(public=True, max_age=10)
def home(request):
    ctx = {"signup_count": signup_count()}
    return render(request, "users/home.html", ctx)


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        limit, window = settings.SIGNUP_RATE_LIMIT
        allowed, retry_after = ratelimit.hit("signup", client_ip(request) or "unknown", limit, window)
        if not allowed:
            logger.warning("signup: rate limit reached for a client, refused")
            ctx = {"form": form, "rate_limited": True, "retry_minutes": max(1, -(-retry_after // 60))}
            response = render(request, "users/signup.html", ctx, status=429)
            response["Retry-After"] = str(retry_after)
            return response
    if request.method == "POST" and form.is_valid():
        if form.is_bot:
            logger.info("signup: honeypot filled, nothing stored")
            typed = {"name": form.cleaned_data["full_name"], "email": form.cleaned_data["email"]}
            return _thanks_redirect(request, typed)
        fields = form.to_signup_fields(ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""))
        try:
            created = Signup.objects.create_unless_duplicate(**fields)
        except (OperationalError, InterfaceError) as exc:
            logger.error("signup: database unavailable (%s), nothing stored", exc.__class__.__name__)
            return database_unavailable(request, ctx={"form": form, "unavailable": True},
                                        template="users/signup.html")  # fmt: skip
        if created is None:
            logger.info("signup: duplicate email at domain %s, nothing stored", fields["email"].rpartition("@")[2])
            return _thanks_redirect(request, {"name": fields["full_name"], "email": fields["email"]})
        return _thanks_redirect(request, {"id": created.pk})
    if not form.is_bound and not _primary_reachable():
        return database_unavailable(request, ctx={"form": form, "unavailable": True}, template="users/signup.html")
    ctx = {"form": form}
    return render(request, "users/signup.html", ctx, status=400 if form.errors else 200)


def _primary_reachable() -> bool:
    """Say whether the primary answers, so nobody fills in a form bound to fail."""
    # The alias, not router.db_for_write(): asking the router counts as a write and would pin this browser.
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        connection.close_if_health_check_failed()  # Django's once-per-request check of a kept connection
        connection.ensure_connection()  # a fresh connection when that one had died
    except (OperationalError, InterfaceError):
        connection.close()
        return False
    return True


@never_cache
def thanks(request):
    # Read right after the write: the router serves it from the primary, or from a replica that has
    # replayed this browser's write (its WAL position cookie), never from one that lacks the row.
    try:
        data = signing.loads(request.COOKIES.get(THANKS_COOKIE, ""), salt=THANKS_SALT, max_age=THANKS_MAX_AGE)
    except signing.BadSignature:
        return redirect("users:signup")
    if "id" in data:
        data = Signup.objects.filter(pk=data["id"]).values("full_name", "email").first()
        if data is None:
            return redirect("users:signup")
        data = {"name": data["full_name"], "email": data["email"]}
    ctx = {"name": data["name"], "email": data["email"]}
    return render(request, "users/thanks.html", ctx)


def _thanks_redirect(request, payload: dict):
    """Redirect to the thank-you page, remembering in a signed cookie what this browser should see there."""
    response = redirect("users:thanks")
    response.set_cookie(
        THANKS_COOKIE,
        signing.dumps(payload, salt=THANKS_SALT, compress=True),
        max_age=THANKS_MAX_AGE,
        path="/signup/",
        httponly=True,
        samesite="Lax",
        secure=settings.HTTPS or request.is_secure(),
    )
    return response
