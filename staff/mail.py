"""What staff are emailed: their enrolment link, and notices to the other superusers. Sent by the queue worker.

Rendered when sent, from the rows (the queue holds ids and a staff username, never an address); Django's mail
with the configured backend (SES through django-anymail, bounded timeouts in settings.ANYMAIL).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from staff.models import EnrolmentInvite

ENROLLED = "enrolled"  # an authenticator was enrolled (by an invitation, or from a verified session)
BACKUP_CODE = "backup_code"  # someone signed in with a backup code (those shown at enrolment, or addstatictoken)
INVITED = "invited"  # an enrolment link was made
NOTICES = {
    ENROLLED: "Staff sign-in: an authenticator was enrolled for {username}",
    BACKUP_CODE: "Staff sign-in: {username} used a backup code",
    INVITED: "Staff sign-in: an enrolment link was made for {username}",
}


def send_enrolment_link(invite_id: int) -> str:
    """Email the invited user their link; return "sent", or why not ("gone", "used", "expired", "no address")."""
    invite = EnrolmentInvite.objects.select_related("user").filter(pk=invite_id).first()
    if invite is None:
        return "gone"
    if invite.used_at is not None or invite.expires_at <= timezone.now():
        return "used" if invite.used_at else "expired"
    user = invite.user
    if not user.email or not user.is_active:
        return "no address"
    ctx = {"username": user.get_username(), "url": settings.STAFF_BASE_URL + invite.path(),
           "expires_at": invite.expires_at, "site": settings.SITE_NAME}  # fmt: skip
    _send("Set up your sign-in to the staff pages", render_to_string("staff/email/enrolment_link.txt", ctx), user.email)
    return "sent"


def send_notice(recipient_id: int, event: str, username: str, at: str) -> str:
    """Tell one superuser what happened to staff account `username`; return "sent" or why not."""
    recipient = get_user_model().objects.filter(pk=recipient_id, is_active=True, is_superuser=True).first()
    if recipient is None or not recipient.email:
        return "no address"
    ctx = {"event": event, "username": username, "at": at, "site": settings.SITE_NAME,
           "admin_url": settings.STAFF_BASE_URL + "/" + settings.ADMIN_URL}  # fmt: skip
    _send(NOTICES[event].format(username=username), render_to_string("staff/email/notice.txt", ctx), recipient.email)
    return "sent"


def _send(subject: str, body: str, to: str) -> None:
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to]).send(fail_silently=False)
