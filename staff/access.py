"""Who may use the staff pages (the admin, /ops/, /ready's detail): the one policy, in this order.

1. An active staff account, signed in with its password (the admin login, behind django-axes' lockout).
2. When `STAFF_OTP_REQUIRED` (on unless set to 0; the local tools set 0), that session is also verified by
   a second factor: a TOTP code from the authenticator app enrolled through an enrolment link
   (staff/enrolment.py: an account without a device cannot sign in), or a one-time backup code (django-otp's
   static tokens: the codes shown at enrolment, or `manage.py addstatictoken USER`, the break-glass path).
   django-otp's OTPMiddleware says whether the session is verified.
3. A staff session ends after `STAFF_SESSION_IDLE_MINUTES` without a request (settings: the session's age is
   renewed by every request).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import user_passes_test
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device


def is_staff_member(user) -> bool:
    """Say whether `user` signed in with a password to an active staff account (step 1)."""
    return bool(user.is_active and user.is_staff)


def second_factor_required() -> bool:
    return settings.STAFF_OTP_REQUIRED


def is_verified(user) -> bool:
    """Say whether OTPMiddleware found this session verified by one of the user's devices."""
    check = getattr(user, "is_verified", None)  # absent on a user object fresh from login()
    return bool(check and check())


def is_verified_staff(user) -> bool:
    """Say whether `user` may use the staff pages (steps 1 and 2)."""
    return is_staff_member(user) and (not second_factor_required() or is_verified(user))


def needs_second_factor(user) -> bool:
    """Say whether `user` has passed step 1 but not step 2."""
    return is_staff_member(user) and second_factor_required() and not is_verified(user)


def is_verified_staff_session(session, user) -> bool:
    """is_verified_staff for code that reads the session before OTPMiddleware runs (/ready's detail)."""
    if not is_staff_member(user):
        return False
    if not second_factor_required():
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)  # what OTPMiddleware reads
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


# As staff_member_required, with the second factor: anyone else goes to the admin login (which sends a
# signed-in staff member on to the second factor).
staff_required = user_passes_test(is_verified_staff, login_url="admin:login")
