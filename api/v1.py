"""/api/v1/: the API object (django-ninja), its key authentication and its errors; the routes are in
api/signups.py, api/feed.py and api/endpoints.py. The OpenAPI schema is served at /api/v1/openapi.json (and
committed as docs/openapi.json), its docs page at /api/v1/docs from our own static files (ninja's bundled
Swagger UI).

1. Every route needs a key (api/keys.py) with the route's scope: 401 without a usable key, 403 without the scope.
2. Every error is a problem document (api/problems.py): a malformed input is a 422 (or 400), never a 5xx;
   the database unavailable is a 503 with Retry-After.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from api import endpoints, feed, keys, problems, signups
from api.models import ApiKey
from project import ratelimit

logger = logging.getLogger("api")


class KeyAuth(HttpBearer):
    """`Authorization: Bearer sgk_...`: a usable key, within its rate limit."""

    def authenticate(self, request, token: str) -> ApiKey | None:
        key = keys.find(token)
        if key is None:
            return None
        allowed, retry_after = ratelimit.hit("api", key.prefix, *settings.API_RATE_LIMIT)
        if not allowed:
            raise problems.ApiProblem(429, "Too many requests", "This key's rate limit was reached.",
                                      {"Retry-After": str(retry_after)})  # fmt: skip
        return key


URI_TOO_LONG = "The path and query are over the server's limit (4,094 bytes): refused before the API, not JSON."


class Api(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Say application/problem+json for the error answers (ninja says application/json for all), and the 414
        gunicorn answers for a request line over its limit before the API sees the request."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.setdefault("responses", {})[414] = {"description": URI_TOO_LONG}
                for code, answer in operation.get("responses", {}).items():
                    if int(code) >= 400 and "content" in answer:
                        answer["content"] = {problems.MEDIA_TYPE: answer["content"]["application/json"]}
        return schema


api = Api(title="Signups API", version="1", urls_namespace="api-v1", auth=KeyAuth(), docs_url="/docs",
          description="Signups, their events, and the same events as signed webhooks (docs/api.md).")  # fmt: skip
api.add_router("/signups", signups.routes)
api.add_router("/events", feed.routes)
api.add_router("/webhooks", endpoints.routes)


@api.exception_handler(problems.ApiProblem)
def _problem(request, exc: problems.ApiProblem):
    return problems.of(exc)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = [{"loc": [str(p) for p in e.get("loc", [])], "msg": str(e.get("msg", ""))} for e in exc.errors]
    return problems.response(422, "Invalid request", "Some parameters are missing or malformed.", errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problems.response(401, "Unauthorized", "Send a usable API key: Authorization: Bearer sgk_...",
                             {"WWW-Authenticate": "Bearer"})  # fmt: skip


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problems.response(404, "Not found")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problems.response(exc.status_code, str(exc) or "Error")


@api.exception_handler(DatabaseError)
def _database(request, exc: DatabaseError):
    logger.error("api: database unavailable (%s)", exc.__class__.__name__)
    return problems.response(503, "Unavailable", "Try again shortly.", {"Retry-After": "5"})
