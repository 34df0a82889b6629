from __future__ import annotations

import functools
import logging
import re
import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.models import Value
from django.db.models.functions import Lower
from django.dispatch import receiver
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_http_methods

from formdef import published
from formdef.topicfields import words
from project import metrics, ratelimit
from project.db.state import use_primary
from project.http import client_ip
from project.middleware import database_unavailable
from users import signup_store
from users.forms import SignupForm
from users.models import Signup
from users.stats import signup_count, topic_count

logger = logging.getLogger("users")

THANKS_COOKIE = "signup_thanks"
THANKS_SALT = "users.thanks"
THANKS_MAX_AGE = 3600
FORM_VERSION = "form_version"  # the hidden input naming the published form version a form was rendered with
VERSION_ID = re.compile(r"[0-9]{1,9}")
UNREADABLE = "unreadable"  # the posted version could not be read: the database is unavailable
NOTICE_INTERVAL = timedelta(hours=1)  # at most one "already signed up" email per address per hour
# The landing page is the same for everyone who reads the same language and count (it is public, cached 10 s
# by browsers already): each process keeps it rendered for a second instead of rendering it per request, the
# larger part of its cost (docs/benchmarks.md). A few keys at most: languages times counts seen in a second.
HOME_PAGE_SECONDS = 1.0
HOME_PAGE_KEYS = 32
_HOME_PAGES: dict[tuple[str, int], tuple[float, bytes]] = {}


@cache_control(public=True, max_age=10)
def home(request):
    count = signup_count()
    if request.GET:  # any query string: rendered for this request only (it is echoed in the language form)
        return render(request, "users/home.html", {"signup_count": count, **_topic_count(request.GET.get("topic"))})
    key = (get_language(), count)
    page = _HOME_PAGES.get(key)
    if page is None or page[0] < time.monotonic():
        content = render(request, "users/home.html", {"signup_count": count}).content
        if len(_HOME_PAGES) >= HOME_PAGE_KEYS:
            _HOME_PAGES.clear()
        page = _HOME_PAGES[key] = (time.monotonic() + HOME_PAGE_SECONDS, content)
    return HttpResponse(page[1])


def _topic_count(key: str | None) -> dict:
    """The landing page's count for one public topic (/?topic=<key>): its name and confirmed members; {} if none."""
    topic = published.current().topic(key) if isinstance(key, str) and len(key) <= 40 else None
    if topic is None or not topic["public"]:
        return {}
    return {"topic_name": words(topic["name"], get_language()), "topic_count": topic_count(topic["id"])}


@receiver(setting_changed)
def _forget_home_pages(**kwargs) -> None:
    _HOME_PAGES.clear()  # tests that override SITE_NAME and the like see their own page


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    definition, changed = _definition(request)
    form = SignupForm(request.POST if request.method == "POST" else None, definition=definition)
    if request.method == "POST":
        ip = client_ip(request)
        refused = ratelimit.refuse_client(request, "signup", settings.SIGNUP_RATE_LIMIT, "users/signup.html",
                                          {"form": form}, ip=ip)  # fmt: skip
        if refused:
            return refused
    if changed == UNREADABLE:  # no database to read the version from: nor to store the signup
        return database_unavailable(request, ctx={"form": form, "unavailable": True}, template="users/signup.html")
    if changed:
        # Not judged by a version the person did not see: shown again, with what they typed, nothing stored.
        logger.info("signup: form version %s, shown again", changed)
        return render(request, "users/signup.html", {"form": form, "form_changed": True}, status=409)
    if request.method == "POST" and form.is_valid():
        if form.is_bot:
            logger.info("signup: honeypot filled, nothing stored")
            # The same cookie, of the same size: c=0 skips the look-up (nothing was stored), so the page is the same.
            typed = {"name": form.cleaned_data["full_name"], "email": form.cleaned_data["email"], "c": 0}
            return _thanks_redirect(request, typed)
        fields = form.to_signup_fields(ip=ip, user_agent=request.headers.get("User-Agent", ""))
        topics = fields.pop("topics")  # memberships, stored in the same statement (users/signup_store.py)
        try:
            created = signup_store.store(Signup(**fields), ip=ip, notice_after=NOTICE_INTERVAL, topics=topics)
        except (OperationalError, InterfaceError) as exc:
            logger.error("signup: database unavailable (%s), nothing stored", exc.__class__.__name__)
            return database_unavailable(request, ctx={"form": form, "unavailable": True},
                                        template="users/signup.html")  # fmt: skip
        metrics.incr("Signups" if created else "SignupDuplicates")
        if not created:
            logger.info("signup: duplicate email at domain %s, nothing stored", fields["email"].rpartition("@")[2])
        # The same answer for a new and a known address (no enumeration): only what this person typed.
        return _thanks_redirect(request, {"name": fields["full_name"], "email": fields["email"], "c": 1})
    if not form.is_bound and not _primary_reachable():
        return database_unavailable(request, ctx={"form": form, "unavailable": True}, template="users/signup.html")
    ctx = {"form": form}
    return render(request, "users/signup.html", ctx, status=400 if form.errors else 200)


def _definition(request) -> tuple[published.Definition, str]:
    """Return the form version to render or judge with, and why it is not the one posted ("" when it is).

    A GET gets the current version. A POST is judged by the version named in its hidden form_version input,
    the one it was rendered with, never by a newer one. Missing or unknown: the current version, and the form
    is shown again ("missing", "unknown"); a missing one is fine while the current version is the bare form,
    as then there was nothing else to ask (forms from before versions, scripts).
    """
    try:
        if request.method != "POST":
            return published.current(), ""
        raw = request.POST.get(FORM_VERSION, "")
        if not raw:
            current = published.current()
            return current, "" if not (current.fields or current.topics) else "missing"
        definition = published.get(int(raw)) if VERSION_ID.fullmatch(raw) else None
        return (definition, "") if definition is not None else (published.current(), "unknown")
    except (OperationalError, InterfaceError):  # a version not held yet, and no database to read it from
        logger.warning("signup: form version unreadable (database unavailable)")
        return published.BARE, "" if request.method != "POST" else UNREADABLE


def _primary_reachable() -> bool:
    """Say whether the primary answers, so nobody fills in a form bound to fail."""
    # The alias, not router.db_for_write(): asking the router counts as a write and would pin this browser.
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        if connection.connection is not None and not connection.is_usable():  # a kept connection: ask it
            connection.close()
        connection.ensure_connection()  # a fresh connection when that one had died
    except (OperationalError, InterfaceError):
        connection.close()
        return False
    return True


@never_cache
def thanks(request):
    # Shows only what this browser typed (the signed cookie), never the stored row: a new and a known address
    # look the same. The row is looked up by that address (read-your-writes: a replica that has this browser's
    # write, else the primary), and read again on the primary on a miss, so a replica behind somebody else's
    # write cannot tell a new address (not there yet) from a known one (there for long).
    try:
        data = signing.loads(request.COOKIES.get(THANKS_COOKIE, ""), salt=THANKS_SALT, max_age=THANKS_MAX_AGE)
        ctx, check = {"name": str(data["name"]), "email": str(data["email"])}, int(data["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return redirect("users:signup")
    if check and not _on_file(ctx["email"]):
        return redirect("users:signup")
    return render(request, "users/thanks.html", ctx)


def _on_file(address: str) -> bool:
    rows = Signup.objects.alias(address=Lower("email")).filter(address=Lower(Value(address)))
    if rows.exists():
        return True
    with use_primary():
        return rows.exists()


@functools.cache
def _thanks_url() -> str:
    return reverse("users:thanks")  # resolved once: the URLconf does not change while the process runs


def _thanks_redirect(request, payload: dict):
    """Redirect to the thank-you page, remembering in a signed cookie what this browser should see there."""
    response = HttpResponseRedirect(_thanks_url())
    response.set_cookie(
        THANKS_COOKIE,
        signing.dumps(payload, salt=THANKS_SALT),  # not compressed: its size depends only on what was typed
        max_age=THANKS_MAX_AGE,
        path="/signup/",
        httponly=True,
        samesite="Lax",
        secure=settings.HTTPS or request.is_secure(),
    )
    return response
