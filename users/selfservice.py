"""The person's own pages, reached by signed links in their emails (no accounts).

1. An emailed link is exchanged at first use: its GET checks the token, sets a short-lived cookie for that
   link's purpose only (HttpOnly, SameSite=Lax, Secure over HTTPS, path-scoped, SELF_SERVICE_COOKIE_TTL) and
   redirects to a clean URL without the token. Only that one request line holds the token; the pages after it
   use the cookie. Responses at a token URL send `Referrer-Policy: no-referrer`.
2. A GET changes nothing (mail scanners open links): the clean URL shows a page with a button; only the POST
   acts (with our CSRF token). The exceptions, authenticated by the token alone: the RFC 8058 one-click
   unsubscribe POST on its link, and a confirm POST on its link (pages served before the exchange existed).
3. A link opens only its purpose: the unsubscribe link (seen by mailbox providers in a header) withdraws
   consent and nothing else; no response here hands out a freshly signed link.
4. Links are revocable (users/tokens.py, Signup.link_version): "send me a new link", withdrawal and erasure
   raise the version, and every link and cookie made before is refused. After a withdrawal on the manage
   page the person's own cookie is renewed at the new version.
5. A bad link or cookie (tampered, expired, revoked, used, for an erased person) gets one friendly 4xx page
   offering a new link: 400 invalid, 410 expired or revoked, 409 already used. Never a 5xx.
6. Every read and write here uses the primary: the person acts on what they just did.
7. "Send me my link" answers the same whatever the address, and does the same work: known or not, one UPDATE
   and one queue row (the worker drops a row that names nobody); rate-limited per address silently; only the
   per-IP limit shows, as it reveals nothing about anybody.
"""

from __future__ import annotations

import functools
import logging

from django import forms
from django.conf import settings
from django.db import router, transaction
from django.db.models import F, Value
from django.db.models.functions import Lower
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from api import events
from api.models import Event
from formdef import published
from formdef.models import Topic
from formdef.topicfields import words
from project import ratelimit
from project.db.state import use_primary
from project.http import client_ip
from users import answers, consent, emails, export, tokens, topics, withdrawal
from users.erasure import erase_signup
from users.forms import SignupForm, clean_text
from users.models import ConsentEvent, Signup
from users.ratelimits import IP_SCOPE, LINK_SCOPE, address_key
from users.stats import invalidate_signup_count
from users.tasks import enqueue_email

logger = logging.getLogger("users")

BAD_LINK_STATUS = {"invalid": 400, "expired": 410, "used": 409}
# The cookie each kind of link is exchanged for, and the only path it is sent to.
COOKIES = {
    tokens.CONFIRM: ("confirm", "/signup/confirm/"),
    tokens.MANAGE: ("mydata", "/my-data/manage/"),
    tokens.UNSUBSCRIBE: ("unsubscribe", "/my-data/unsubscribe/"),
}
CLEAN_URLS = {tokens.CONFIRM: "users:confirm_page", tokens.MANAGE: "users:manage_page",
              tokens.UNSUBSCRIBE: "users:unsubscribe_page"}  # fmt: skip


class LinkForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                             error_messages=SignupForm.base_fields["email"].error_messages)  # fmt: skip

    def clean_email(self) -> str:
        local, _at, domain = clean_text(self.cleaned_data["email"], _("The email address")).rpartition("@")
        return f"{local}@{domain.lower()}"


# --- helpers ----------------------------------------------------------------------------------------
def _token_url(view):
    """Mark a view at a URL holding a token: no-store, and its URL never leaves in a Referer header."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        return response

    return never_cache(wrapped)


def _bad_link(request, reason: str, forget: str | None = None):
    ctx = {"reason": reason, "language_next": reverse("users:send_link")}  # not back to a URL holding a token
    response = render(request, "users/bad_link.html", ctx, status=BAD_LINK_STATUS[reason])
    return _forget(response, forget) if forget else response


def _cookie_name(purpose: str) -> str:
    name = COOKIES[purpose][0]
    return f"__Secure-{name}" if settings.SESSION_COOKIE_SECURE else name


def _remember(response, request, purpose: str, signup: Signup):
    """Set the short-lived cookie that opens this purpose's pages for this person, at their link version."""
    response.set_cookie(_cookie_name(purpose), tokens.for_signup(purpose, signup, cookie=True),
                        max_age=settings.SELF_SERVICE_COOKIE_TTL, path=COOKIES[purpose][1], httponly=True,
                        secure=settings.SESSION_COOKIE_SECURE or request.is_secure(), samesite="Lax")  # fmt: skip
    return response


def _forget(response, purpose: str):
    response.delete_cookie(_cookie_name(purpose), path=COOKIES[purpose][1], samesite="Lax")
    return response


def _person(purpose: str, token: str, *, cookie: bool = False, lock: bool = False) -> tuple[Signup | None, str]:
    """Return the signup this token opens (row-locked when `lock`, inside a transaction), or (None, reason)."""
    try:
        claim = tokens.read(purpose, token, cookie=cookie)
    except tokens.BadToken as exc:
        return None, exc.reason
    rows = Signup.objects.using(router.db_for_write(Signup))
    signup = (rows.select_for_update() if lock else rows).filter(pk=claim.signup_id).first()
    problem = tokens.opens(purpose, claim, signup)
    return (None, problem) if problem else (signup, "")


def _visitor(request, purpose: str, *, lock: bool = False) -> tuple[Signup | None, str]:
    """Return the signup this request's cookie for `purpose` opens, or (None, reason); no cookie is "expired"."""
    value = request.COOKIES.get(_cookie_name(purpose))
    return _person(purpose, value, cookie=True, lock=lock) if value else (None, "expired")


def _exchange(request, purpose: str, token: str):
    """Trade an emailed link for its cookie and a redirect to the clean URL; nothing else happens."""
    with use_primary():
        signup, problem = _person(purpose, token)
    if signup is None:
        return _bad_link(request, problem)
    if purpose == tokens.CONFIRM and (signup.is_confirmed or signup.withdrawn_at is not None):
        return _bad_link(request, "used")
    return _remember(redirect(CLEAN_URLS[purpose]), request, purpose, signup)


# --- confirm (double opt-in) ---------------------------------------------------------------------------
@_token_url
@require_http_methods(["GET", "POST"])
def confirm_link(request, token: str):
    if request.method == "GET":
        return _exchange(request, tokens.CONFIRM, token)
    return _confirm(request, lambda lock: _person(tokens.CONFIRM, token, lock=lock))


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request):
    return _confirm(request, lambda lock: _visitor(request, tokens.CONFIRM, lock=lock))


def _confirm(request, find):
    """Show the Confirm button (GET) or confirm (POST) for the person `find(lock)` returns."""
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        signup, problem = find(request.method == "POST")
        if signup is None:
            return _bad_link(request, problem, forget=tokens.CONFIRM)
        if signup.is_confirmed or signup.withdrawn_at is not None:
            return _bad_link(request, "used", forget=tokens.CONFIRM)
        if request.method == "GET":
            return render(request, "users/confirm.html", {"signup": signup})
        ip = client_ip(request)
        signup.confirmed_at, signup.confirmed_ip = timezone.now(), ip
        signup.save(update_fields=["confirmed_at", "confirmed_ip"])
        wording = signup.consent_version or consent.version(signup.language)
        ConsentEvent.objects.using(using).create(signup=signup, kind=ConsentEvent.CONFIRMED, ip=ip,
                                                 wording_version=wording)  # fmt: skip
        topics.confirm(signup, ip)  # the topics chosen on the form, one `confirmed` event each
        events.record(Event.CONFIRMED, signup.pk, using=using)  # api/: webhooks and the events feed
        transaction.on_commit(invalidate_signup_count, using=using)
    logger.info("signup %s: address confirmed", signup.pk)
    response = redirect(reverse("users:manage_page") + "?confirmed=1")  # straight in: the cookie, not a link
    return _forget(_remember(response, request, tokens.MANAGE, signup), tokens.CONFIRM)


# --- manage my data --------------------------------------------------------------------------------
@_token_url
@require_GET
def manage_link(request, token: str):
    return _exchange(request, tokens.MANAGE, token)


@never_cache
@require_GET
def manage(request):
    with use_primary():
        signup, problem = _visitor(request, tokens.MANAGE)
        if signup is None:
            return _bad_link(request, problem, forget=tokens.MANAGE)
        events = list(signup.events.select_related("topic"))
        for event in events:  # the topic an event is about, in the page's language
            event.topic_name = words(event.topic.name, get_language()) if event.topic else ""
        ctx = {"signup": signup, "events": events,
               "consent_words": consent.wording(signup.consent_version) if signup.consent_version else None,
               "just_confirmed": "confirmed" in request.GET, "just_withdrawn": "withdrawn" in request.GET,
               "topic_choices": topics.choices(signup, published.current(), get_language()),
               "just_switched": "topics" in request.GET}  # fmt: skip
        ctx["answers"] = answers.labelled(signup, get_language() or signup.language)  # the fields staff added
    return render(request, "users/manage.html", ctx)


MAX_TOPICS_POSTED = 200  # more keys than any form offers: the rest are ignored, never looked up


@never_cache
@require_POST
def manage_topics(request):
    """The preference centre's Save: join and leave topics, each change a ledger event naming the topic."""
    wanted = set(request.POST.getlist("topics")[:MAX_TOPICS_POSTED])
    with transaction.atomic(using=router.db_for_write(Signup)):
        signup, problem = _visitor(request, tokens.MANAGE, lock=True)
        if signup is None:
            return _bad_link(request, problem, forget=tokens.MANAGE)
        if signup.withdrawn_at is None and signup.consent:  # consent withdrawn: no topic can be joined or kept
            topics.switch(signup, wanted, published.current(), get_language(), client_ip(request))
    return redirect(reverse("users:manage_page") + "?topics=1")


@never_cache
@require_POST
def download(request):
    with use_primary():
        signup, problem = _visitor(request, tokens.MANAGE)
        if signup is None:
            return _bad_link(request, problem, forget=tokens.MANAGE)
        body = export.person_json(signup)
    logger.info("signup %s: the person downloaded their data", signup.pk)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@never_cache
@require_POST
def withdraw(request):
    with transaction.atomic(using=router.db_for_write(Signup)):
        signup, problem = _visitor(request, tokens.MANAGE, lock=True)
        if signup is None:
            return _bad_link(request, problem, forget=tokens.MANAGE)
        withdrawal.withdraw(signup, client_ip(request))
    # Every emailed link is revoked now; the person's own cookie follows the new version.
    return _remember(redirect(reverse("users:manage_page") + "?withdrawn=1"), request, tokens.MANAGE, signup)


@never_cache
@require_http_methods(["GET", "POST"])
def erase(request):
    with use_primary():
        signup, problem = _visitor(request, tokens.MANAGE)
    if signup is None:
        return _bad_link(request, problem, forget=tokens.MANAGE)
    if request.method == "GET":
        return render(request, "users/erase.html", {"signup": signup})
    erase_signup(signup.pk, None, reason="erased")  # raises the link version: every link and cookie is dead
    return _forget(redirect("users:erased"), tokens.MANAGE)  # post/redirect/get: a reload does not post again


@never_cache
def erased(request):
    return render(request, "users/erased.html", {})


# --- unsubscribe (RFC 8058 one-click on the link; a page with a button for people) ---------------------------
@_token_url
@csrf_exempt  # mail providers POST here without our cookie; the signed token is the authentication
@require_http_methods(["GET", "POST"])
def unsubscribe_link(request, token: str):
    if request.method == "GET":
        return _exchange(request, tokens.UNSUBSCRIBE, token)
    return _unsubscribe(request, lambda: _person(tokens.UNSUBSCRIBE, token, lock=True))


@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request):
    if request.method == "GET":
        with use_primary():
            signup, problem = _visitor(request, tokens.UNSUBSCRIBE)
        if signup is None:
            return _bad_link(request, problem, forget=tokens.UNSUBSCRIBE)
        return render(request, "users/unsubscribe.html", {"done": False})
    return _unsubscribe(request, lambda: _visitor(request, tokens.UNSUBSCRIBE, lock=True))


def _unsubscribe(request, find):
    """Withdraw the consent of the person `find()` returns; the answer holds no link to their data."""
    with transaction.atomic(using=router.db_for_write(Signup)):
        signup, problem = find()
        if signup is None:
            return _bad_link(request, problem, forget=tokens.UNSUBSCRIBE)
        withdrawal.withdraw(signup, client_ip(request))
    ctx = {"done": True, "language_next": reverse("users:home")}  # not back to a URL holding a token
    return _forget(render(request, "users/unsubscribe.html", ctx), tokens.UNSUBSCRIBE)


# --- leave one topic (its List-Unsubscribe: RFC 8058 one-click on the link; a page with a button for people) ---
@_token_url
@csrf_exempt  # mail providers POST here without our cookie; the signed token is the authentication
@require_http_methods(["GET", "POST"])
def topic_unsubscribe(request, token: str):
    """Leave the link's topic (POST) or show what pressing the button does (GET: mail scanners open links)."""
    try:
        claim, topic_id = tokens.read_topic(token)
    except tokens.BadToken as exc:
        return _bad_link(request, exc.reason)
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        rows = Signup.objects.using(using)
        signup = (rows.select_for_update() if request.method == "POST" else rows).filter(pk=claim.signup_id).first()
        topic = Topic.objects.using(using).filter(pk=topic_id).first()
        if signup is None or signup.is_erased or topic is None or not tokens.matches(tokens.TOPIC_UNSUBSCRIBE, claim,
                                                                                     signup.email):  # fmt: skip
            return _bad_link(request, "invalid")
        if request.method == "POST":
            topics.leave(signup, topic_id, client_ip(request))
    ctx = {"done": request.method == "POST", "topic_name": words(topic.name, get_language()),
           "language_next": reverse("users:home")}  # fmt: skip
    return render(request, "users/unsubscribe_topic.html", ctx)


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
    """Queue a new link for this address if we hold it and its limit allows, revoking the old ones; say nothing.

    Known or not, the same statements run: a locking read, one UPDATE (of no row for an address we do not
    hold) and one queue row (naming nobody for such an address: the worker drops it without sending), so
    neither the answer's timing nor the database's work tells them apart.
    """
    limit, window = settings.LINK_RATE_LIMIT_ADDRESS
    allowed, _ = ratelimit.hit(LINK_SCOPE, address_key(address), limit, window)
    if not allowed:
        logger.info("send-link: per-address limit reached, nothing sent")
        return
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        rows = Signup.objects.using(using).alias(address=Lower("email"))  # the unique index's expression
        signup = rows.select_for_update().filter(address=Lower(Value(address)), email_blocked_at__isnull=True).first()
        known = signup if signup is not None and not signup.is_erased else None
        pk = known.pk if known else None  # pk=None: "id IS NULL", the same statement updating no row
        Signup.objects.using(using).filter(pk=pk).update(link_version=F("link_version") + 1)
        # Not confirmed yet: the confirmation email (its footer holds the manage link), as the old one is revoked.
        pending = known is not None and not known.is_confirmed and known.withdrawn_at is None
        enqueue_email(pk, emails.CONFIRM if pending else emails.LINK)


@never_cache
def link_sent(request):
    return render(request, "users/link_sent.html", {})
