"""The strategy we compare against (django-multidb-router's): after a write, pin the client to the primary
for 15 seconds with a cookie; otherwise read a replica, whatever its lag. Bench-only."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from project.db import counters, state
from project.db.middleware import _remember_position

PIN_SECONDS = 15
COOKIE = "multidb_pinning"


class PinRouter:
    def db_for_read(self, model, **hints) -> str:
        current = state.current()
        alias = DEFAULT_DB_ALIAS if current.wrote or current.min_lsn else "replica1"
        counters.incr("reads", alias)
        return alias

    def db_for_write(self, model, **hints) -> str:
        state.mark_written()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


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
