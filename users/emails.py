"""What we email, and the one place that sends (the queue worker calls `send`; views only queue).

1. Every email is rendered from the signup row when it is sent (text + HTML, templates/users/email/):
   the queue holds no address or name. No email shows anything a stranger typed (not even the name: anyone
   can type someone else's address, and a name like "http://..." or "=HYPERLINK(...)" would become a link
   from our address); only our own words, our links and the date.
2. Nothing goes to an erased address, or one with email_blocked_at set (bounce or complaint).
3. A confirmation (or a pre-double-opt-in signup's reconfirmation) is not sent for an address already
   confirmed, nor once consent was withdrawn.
4. Every email carries the signed "manage my data" link, the privacy page, and List-Unsubscribe with
   List-Unsubscribe-Post (RFC 8058 one-click): a POST there withdraws consent. A mailing about one topic
   carries that topic's headers instead (users.topics.list_unsubscribe_headers): it leaves that topic only.
5. Every email is in the person's language (Signup.language, the form's language at signup), whoever or
   whatever queued it: subject, text and HTML are rendered under translation.override(signup.language).
6. EMAIL_PROVIDER=ses sends through django-anymail's Amazon SES (v2 API, boto3, AWS_ENDPOINT_URL honoured,
   bounded timeouts in settings.ANYMAIL); console prints the email (local mode, `make run`).
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import router
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from users import privacy, tokens, topics
from users.models import Signup

logger = logging.getLogger("users.emails")

CONFIRM = "confirm"  # after a signup: confirm your address
ALREADY = "already"  # a signup with a known address: you are already signed up, manage your data here
LINK = "link"  # "send me my link": your manage-my-data link
RECONFIRM = "reconfirm"  # a signup from before double opt-in: please confirm (`manage.py reconfirm`)
SUBJECTS = {
    CONFIRM: _("Please confirm your address"),
    ALREADY: _("You are already signed up"),
    LINK: _("Your link to manage your data"),
    RECONFIRM: _("Do you still want to hear from us?"),
}
KINDS = tuple(SUBJECTS)


@functools.cache
def _connection():
    """Return the worker's one mail connection (for SES, one boto3 client), opened on first use.

    Opened here, once: a backend that is not open when asked to send opens and closes itself around that one
    send, and for SES that is a new boto3 client (a few hundred milliseconds) per email.
    """
    connection = get_connection(fail_silently=False)
    connection.open()
    return connection


def absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path


def links(signup: Signup) -> dict[str, str]:
    """Return the signed links of an email for this person (confirm, manage, unsubscribe) and the privacy page.

    Each carries the person's link version now, when the email is rendered (users/tokens.py): a link asked for
    later revokes it.
    """

    def url(name: str, purpose: str) -> str:
        return absolute(reverse(name, args=[tokens.for_signup(purpose, signup)]))

    return {
        "confirm_url": url("users:confirm", tokens.CONFIRM),
        "manage_url": url("users:manage", tokens.MANAGE),
        "unsubscribe_url": url("users:unsubscribe", tokens.UNSUBSCRIBE),
        "privacy_url": absolute("/privacy/"),
    }


def build(signup: Signup, kind: str) -> EmailMultiAlternatives:
    """Return the email `kind` for this person, in their language, text and HTML, with its list headers."""
    with translation.override(signup.language or settings.LANGUAGE_CODE):
        return _build(signup, kind)


def _build(signup: Signup, kind: str) -> EmailMultiAlternatives:
    ctx = {
        "signup": signup,
        "site_name": settings.SITE_NAME,
        "site_tagline": privacy.tagline(),
        "data_controller": settings.DATA_CONTROLLER,
        "privacy_contact": settings.PRIVACY_CONTACT,
        "confirm_days": settings.CONFIRM_TTL // 86400,
        "manage_days": settings.MANAGE_TTL // 86400,
        # The topics the person ticked (our own words, per language): confirming starts them too (users/topics.py).
        "topic_names": topics.names(signup, translation.get_language()) if kind == CONFIRM else [],
        **links(signup),
    }
    text = render_to_string(f"users/email/{kind}.txt", ctx)
    html = render_to_string(f"users/email/{kind}.html", ctx)
    message = EmailMultiAlternatives(
        subject=f"{settings.SITE_NAME}: {SUBJECTS[kind]}",  # rendered now, in the person's language
        body=text,
        from_email=settings.EMAIL_FROM,
        to=[signup.email],
        headers={
            "List-Unsubscribe": f"<{ctx['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        connection=_connection(),
    )
    message.attach_alternative(html, "text/html")
    return message


def skip_reason(signup: Signup | None, kind: str) -> str | None:
    """Say why email `kind` must not go to this person (erased, blocked, already confirmed...), or None."""
    if signup is None or signup.is_erased:
        return "no such person"
    if signup.email_blocked_at is not None:
        return "address blocked"
    if kind in (CONFIRM, RECONFIRM) and (signup.is_confirmed or signup.withdrawn_at is not None):
        return "already confirmed or withdrawn"
    if kind == CONFIRM and not signup.consent:
        return "never consented"  # signed up before consent was required: we do not ask them anything
    return None


def send(signup_id: int, kind: str) -> str:
    """Send email `kind` to signup `signup_id` now; return "sent" or why not. Raises when sending failed."""
    if kind not in SUBJECTS:
        raise ValueError(f"unknown email kind {kind!r}")
    signup = Signup.objects.using(router.db_for_write(Signup)).filter(pk=signup_id).first()
    reason = skip_reason(signup, kind)
    if reason:
        logger.info("email %s to signup %s not sent: %s", kind, signup_id, reason)
        return f"skipped: {reason}"
    build(signup, kind).send()
    logger.info("email %s sent to signup %s", kind, signup_id)
    return "sent"
