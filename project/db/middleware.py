"""Request scope for routing: read-your-writes across requests, and failover of reads to the primary."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

from project.db import counters, state
from project.db.monitor import PRIMARY_SQL, lsn_to_int, monitor, replica_aliases

logger = logging.getLogger("project.db")

COOKIE_SALT = "project.db.wal-position"
COOKIE_MAX_AGE = 3600  # far longer than any lag a replica may serve with (REPLICA_MAX_LAG)
RETRYABLE_METHODS = {"GET", "HEAD", "OPTIONS"}


class RoutingMiddleware:
    """Scope routing state per request; after a write remember the primary's WAL position in a cookie.

    A GET/HEAD whose database work failed on a replica (the connection that raised is the replica's, not
    the primary's) marks that replica down and runs again, once, with every read on the primary: through
    the whole stack below this middleware, so its response is rendered and processed like any other.
    Place it directly below DatabaseUnavailableMiddleware, which turns the first failure into the 503
    page that the second run replaces.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_aliases():
            return self.get_response(request)
        monitor.ensure_running()
        timeline, position = _client_position(request)
        token = state.begin_request(min_lsn=position, min_timeline=timeline)
        try:
            response = self.get_response(request)
            current = state.current()
            if current.retry:
                counters.incr("retries")
                with state.use_primary():
                    response = self.get_response(request)
            if current.wrote:
                _remember_position(request, response, current.position)
            return response
        finally:
            state.end_request(token)

    def process_exception(self, request, exception):
        retry_on_primary(request, exception)
        return None  # the 503 page answers now; __call__ replaces it with the run on the primary


def retry_on_primary(request, exception: Exception) -> bool:
    """Mark a replica that failed this GET down, and have RoutingMiddleware run the request again on the
    primary, once; say whether it will. For a view's exception, and for one of the staff-only middleware
    (project.middleware.StaffMiddleware), which Django never hands to process_exception."""
    current = state.current()
    alias = _failed_replica(current.read_alias)
    if (
        not isinstance(exception, (OperationalError, InterfaceError))
        or request.method not in RETRYABLE_METHODS
        or current.retry
        or alias is None
    ):
        return False
    current.retry = True
    monitor.mark_down(alias, exception)
    connection = connections[alias]
    with contextlib.suppress(DatabaseError):
        connection.close()
    connection.errors_occurred = False  # handled: a later failure elsewhere is not blamed on it
    logger.warning("%s %s failed on %s; running it again on the primary", request.method, request.path, alias)
    return True


def _failed_replica(alias: str | None) -> str | None:
    """Return the replica whose connection raised during this request, unless the primary's failed too."""
    if alias in (None, DEFAULT_DB_ALIAS) or connections[DEFAULT_DB_ALIAS].errors_occurred:
        return None
    return alias if connections[alias].errors_occurred else None


def _cookie_name() -> str:
    return settings.ROUTER_COOKIE_NAME


def _client_position(request) -> tuple[int, int]:
    """Return (timeline, WAL position) from the client's signed cookie; (0, 0) when it has none."""
    raw = request.get_signed_cookie(_cookie_name(), default="", salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE)
    timeline, _, position = raw.rpartition("/")  # "timeline/position"; a plain position from before timelines
    try:
        return int(timeline or 0), int(position or 0)
    except ValueError:
        return 0, 0


def _remember_position(request, response, position: tuple[int, int] | None = None) -> None:
    """Store the primary's timeline and WAL position after this request's writes, so later reads can wait for it.

    `position` is what the request's last write statement returned itself (state.note_position): no query.
    """
    primary = connections[DEFAULT_DB_ALIAS]
    if position is not None:
        timeline, lsn = position
    elif primary.vendor != "postgresql" or primary.in_atomic_block or primary.connection is None:
        return
    else:
        try:
            with primary.cursor() as cursor:
                cursor.execute(PRIMARY_SQL)
                text, timeline = cursor.fetchone()
        except DatabaseError:
            return  # the write failed with the primary; nothing to wait for
        lsn = lsn_to_int(text)
    response.set_signed_cookie(
        _cookie_name(), f"{timeline}/{lsn}", salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE,
        httponly=True, samesite="Lax", secure=settings.HTTPS or request.is_secure(),
    )  # fmt: skip
