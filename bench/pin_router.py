"""The strategy we compare against (django-multidb-router's): after a write, pin the client to the primary
for 15 seconds with a cookie; otherwise read a replica, whatever its lag. Bench-only."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from project.db import counters, state
from project.db.middleware import _remember_position
from project.db.router import PrimaryReplicaRouter

PIN_SECONDS = 15
COOKIE = "multidb_pinning"


class PinRouter(PrimaryReplicaRouter):
    """Our writes and migrations, but the read decision of a 15-second cookie pin."""

    def db_for_read(self, model, **hints) -> str:
        current = state.current()
        alias = DEFAULT_DB_ALIAS if current.wrote or current.min_lsn else "replica1"
        counters.incr("reads", alias)
        return alias


class PinMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = state.begin_request(min_lsn=1 if request.COOKIES.get(COOKIE) else 0)
        try:
            response = self.get_response(request)
            if state.current().wrote:
                response.set_cookie(COOKIE, "y", max_age=PIN_SECONDS)
                _remember_position(request, response)  # for the bench's bookkeeping only, never for routing
            return response
        finally:
            state.end_request(token)
