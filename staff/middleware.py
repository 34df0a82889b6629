"""End a signed-in session after `STAFF_SESSION_IDLE_MINUTES` without a request, or `SESSION_COOKIE_AGE` after login.

The time of the last request is kept in the session and rewritten at most once a minute: saving the session on
every request (SESSION_SAVE_EVERY_REQUEST) would make every staff request a write, and a write sends that
browser's next reads to the primary (project/db) instead of a replica.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout

logger = logging.getLogger("staff")

SEEN_KEY = "staff_seen"  # epoch seconds of the last request (to the minute)
SINCE_KEY = "staff_since"  # epoch seconds of the login
REFRESH_SECONDS = 60


def mark_login(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: start both clocks."""
    if request is not None and hasattr(request, "session"):
        request.session[SEEN_KEY] = request.session[SINCE_KEY] = time.time()


class IdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session:  # someone is signed in (an anonymous visitor's session is never read)
            now = time.time()
            seen, since = session.get(SEEN_KEY, 0), session.get(SINCE_KEY, 0)
            if now - seen > settings.STAFF_SESSION_IDLE_MINUTES * 60 or now - since > settings.SESSION_COOKIE_AGE:
                logger.info("staff session of user %s ended: %s", session[SESSION_KEY],
                            "idle" if now - seen > settings.STAFF_SESSION_IDLE_MINUTES * 60 else "too old")  # fmt: skip
                logout(request)
            elif now - seen > REFRESH_SECONDS:
                session[SEEN_KEY] = now
        return self.get_response(request)
