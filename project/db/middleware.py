"""Request scope for routing: read-your-writes across requests, and failover of reads to the primary."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

from project.db import counters, state
from project.db.monitor import lsn_to_int, monitor, replica_aliases

logger = logging.getLogger("project.db")

COOKIE_SALT = "project.db.wal-position"
COOKIE_MAX_AGE = 3600  # far longer than any lag a replica may serve with (REPLICA_MAX_LAG)
RETRYABLE_METHODS = {"GET", "HEAD", "OPTIONS"}


class RoutingMiddleware:
    """Scope routing state per request; after a write remember the primary's WAL position in a cookie.

    Also retries a GET/HEAD whose view failed on a replica, once, on the primary (the replica is marked
    down first), so a dying replica never shows anyone an error. Place it directly below
    DatabaseUnavailableMiddleware so this retry is tried before the 503 page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_aliases():
            return self.get_response(request)
        monitor.ensure_running()
        token = state.begin_request(min_lsn=_client_position(request))
        try:
            response = self.get_response(request)
            if state.current().wrote:
                _remember_position(request, response)
            return response
        finally:
            state.end_request(token)

    def process_exception(self, request, exception):
        current = state.current()
        alias = current.read_alias
        if (
            not isinstance(exception, (OperationalError, InterfaceError))
            or request.method not in RETRYABLE_METHODS
            or current.retried
            or alias in (None, DEFAULT_DB_ALIAS)
            or request.resolver_match is None
        ):
            return None
        current.retried = True
        monitor.mark_down(alias, exception)
        with contextlib.suppress(DatabaseError):
            connections[alias].close()
        counters.incr("retries")
        logger.warning("%s %s failed on %s; retrying on the primary", request.method, request.path, alias)
        match = request.resolver_match
        try:
            with state.use_primary():
                return match.func(request, *match.args, **match.kwargs)
        except (OperationalError, InterfaceError):
            return None  # the primary failed too: the 503 page handles the original error


def _cookie_name() -> str:
    return settings.ROUTER_COOKIE_NAME


def _client_position(request) -> int:
    raw = request.get_signed_cookie(_cookie_name(), default="", salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE)
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def _remember_position(request, response) -> None:
    """Store the primary's WAL position after this request's writes, so later reads can wait for it."""
    primary = connections[DEFAULT_DB_ALIAS]
    if primary.vendor != "postgresql" or primary.in_atomic_block or primary.connection is None:
        return
    try:
        with primary.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            position = lsn_to_int(cursor.fetchone()[0])
    except DatabaseError:
        return  # the write failed with the primary; nothing to wait for
    response.set_signed_cookie(
        _cookie_name(), str(position), salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE,
        httponly=True, samesite="Lax", secure=settings.HTTPS or request.is_secure(),
    )  # fmt: skip
