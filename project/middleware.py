import logging

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.db import InterfaceError, OperationalError
from django.shortcuts import render
from django.utils.module_loading import import_string

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


class StaffMiddleware:
    """Run settings.STAFF_MIDDLEWARE (sessions, auth, messages, the login lockout ...) only on staff paths.

    Public pages (the form, the thank-you page, the person's own pages) read no session and no user, so
    every signup used to pay for middleware only staff need. Staff paths are the admin (ADMIN_URL) and
    settings.STAFF_PATHS (/ops/); /ready loads a staff session itself (ops/views.py). The inner chain is
    built as Django builds MIDDLEWARE, its process_view/_exception/_template_response hooks included.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = (f"/{settings.ADMIN_URL}", *settings.STAFF_PATHS)
        self.view_hooks, self.template_hooks, self.exception_hooks = [], [], []
        handler = get_response
        for path in reversed(settings.STAFF_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self.view_hooks.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self.template_hooks.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self.exception_hooks.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self.staff_chain = handler

    def _is_staff(self, request) -> bool:
        return request.path_info.startswith(self.prefixes)

    def __call__(self, request):
        return self.staff_chain(request) if self._is_staff(request) else self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if self._is_staff(request):
            for hook in self.view_hooks:
                response = hook(request, view_func, view_args, view_kwargs)
                if response is not None:
                    return response
        return None

    def process_template_response(self, request, response):
        if self._is_staff(request):
            for hook in self.template_hooks:
                response = hook(request, response)
        return response

    def process_exception(self, request, exception):
        if self._is_staff(request):
            for hook in self.exception_hooks:
                response = hook(request, exception)
                if response is not None:
                    return response
        return None
