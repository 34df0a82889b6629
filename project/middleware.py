import logging

from django.db import InterfaceError, OperationalError
from django.shortcuts import render

logger = logging.getLogger("project")

RETRY_AFTER_SECONDS = 30


def database_unavailable(request, status: int = 503, ctx: dict | None = None, template: str = "503.html"):
    """Render the friendly 'try again shortly' page with Retry-After."""
    response = render(request, template, ctx or {}, status=status)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turn a lost database connection into a 503 page the person can act on, not a 500 traceback."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            name = exception.__class__.__name__
            logger.error("database unavailable on %s %s: %s", request.method, request.path, name)
            return database_unavailable(request)
        return None
