"""Who may enrol an authenticator, and who hears of it: the one policy, in this order.

1. A staff account without a confirmed device cannot sign in: its password alone leads to a page that says
   to ask for an enrolment link (staff/views.py), and its session is never verified.
2. An enrolment link is made by `manage.py invite_staff USER` (printed) or by a verified superuser in the
   admin (emailed through the queue). It is an EnrolmentInvite row (random nonce, expiry, used_at) and the
   link carries HMAC(SECRET_KEY, id:nonce:user): nothing in the table or the queue opens it, and the worker
   builds it again from the row when it sends. A new link for a user revokes that user's older ones.
3. The link works once: its first visit is checked (a bad, used or expired one gets a 410 page), kept in
   the session and exchanged for a clean URL, so the token is in one request line only. After the owner's
   password, a POST spends it (a conditional UPDATE of used_at: two uses cannot both win) and opens
   enrolment for ENROL_MINUTES in that session.
4. Re-enrolment of a user who has devices needs a link too, or a session verified by the current factor.
5. Every enrolment and every backup-code sign-in (the enrolment's codes or `addstatictoken`, the break-glass
   path) is logged with the staff username only, and emailed to every other active superuser.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.utils import timezone

from staff import mail, tasks
from staff.models import EnrolmentInvite

logger = logging.getLogger("staff")

PENDING_KEY = "staff_enrol_pending"  # the invitation whose link this browser opened (not yet spent)
CLAIMED_KEY = "staff_enrol_claimed"  # the invitation spent by this session: enrolment is open
ENROL_MINUTES = 30  # how long a spent link keeps enrolment open in its session


def invite(user, by: str, *, email: bool = False) -> EnrolmentInvite:
    """Make a new enrolment link for `user` (revoking older ones); queue it to their address when `email`."""
    using = router.db_for_write(EnrolmentInvite)
    with transaction.atomic(using=using):
        EnrolmentInvite.objects.using(using).filter(user=user, used_at__isnull=True).delete()
        expires = timezone.now() + timedelta(hours=settings.STAFF_ENROLMENT_HOURS)
        created = EnrolmentInvite.objects.using(using).create(user=user, created_by=by, expires_at=expires)
        if email:
            tasks.send_enrolment_link.enqueue(invite_id=created.pk)
        _notify(mail.INVITED, user)
    logger.info("staff user %s: enrolment link made by %s, valid %d h%s", user.get_username(), by,
                settings.STAFF_ENROLMENT_HOURS, ", emailed" if email else "")  # fmt: skip
    return created


def find(token: str) -> tuple[EnrolmentInvite | None, str]:
    """Return (the live invitation this token names, "") or (None, why: "bad", "used", "expired")."""
    pk, _, signature = token.partition("-")
    plausible = pk.isascii() and pk.isdigit() and len(pk) <= 18  # a bigint: a longer number is no row, not a 500
    found = EnrolmentInvite.objects.select_related("user").filter(pk=int(pk)).first() if plausible else None
    if found is None or not found.matches(signature):
        return None, "bad"
    if found.used_at is not None:
        return None, "used"
    if found.expires_at <= timezone.now():
        return None, "expired"
    return found, ""


def spend(invite_id: int, user) -> bool:
    """Mark the invitation used, if it is still live and `user`'s; say whether this call spent it."""
    now = timezone.now()
    spent = EnrolmentInvite.objects.filter(pk=invite_id, user=user, used_at__isnull=True, expires_at__gt=now)
    if not spent.update(used_at=now):
        return False
    logger.info("staff user %s: enrolment link used", user.get_username())
    return True


def enrolment_open(session, user) -> bool:
    """Say whether this session spent an invitation of `user` within ENROL_MINUTES."""
    invite_id = session.get(CLAIMED_KEY)
    if not invite_id:
        return False
    since = timezone.now() - timedelta(minutes=ENROL_MINUTES)
    return EnrolmentInvite.objects.filter(pk=invite_id, user=user, used_at__gte=since).exists()


def enrolled(user, *, by_invitation: bool) -> None:
    """Log an enrolment and tell the other superusers (call inside the transaction that saved the device)."""
    logger.warning("staff user %s: authenticator enrolled (%s)", user.get_username(),
                   "enrolment link" if by_invitation else "verified session")  # fmt: skip
    _notify(mail.ENROLLED, user)


def backup_code_used(user, left: int) -> None:
    """Log a sign-in with a backup code and tell the other superusers."""
    logger.warning("staff user %s: signed in with a backup code (%d left)", user.get_username(), left)
    _notify(mail.BACKUP_CODE, user)


def _notify(event: str, user) -> None:
    at = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    others = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk).exclude(email="")
    for recipient_id in others.values_list("pk", flat=True):
        tasks.send_notice.enqueue(recipient_id=recipient_id, event=event, username=user.get_username(), at=at)
