"""Errors as RFC 9457 problem details (application/problem+json), for every error the API answers."""

from __future__ import annotations

import json

from django.http import HttpResponse
from ninja import Schema

MEDIA_TYPE = "application/problem+json"
ERROR_CODES = frozenset({400, 401, 403, 404, 409, 422, 429, 503})


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict] | None = None


class ApiProblem(Exception):
    """Raise to answer with a problem (status, title, detail); headers such as Retry-After go along."""

    def __init__(self, status: int, title: str, detail: str = "", headers: dict | None = None, **extra) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.headers, self.extra = status, title, detail, headers or {}, extra


def response(status: int, title: str, detail: str = "", headers: dict | None = None, **extra) -> HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    answer = HttpResponse(json.dumps(body), status=status, content_type=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        answer[name] = value
    return answer


def of(exc: ApiProblem) -> HttpResponse:
    return response(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)
