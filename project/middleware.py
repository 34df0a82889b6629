import functools
import logging

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.shortcuts import render
from django.utils.module_loading import import_string

from project.db.middleware import retry_on_primary
from project.http import staff_prefixes

logger = logging.getLogger("project")

RETRY_AFTER_SECONDS = 30
DATABASE_ERRORS = (OperationalError, InterfaceError)


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
        if isinstance(exception, DATABASE_ERRORS):
            name = exception.__class__.__name__
            logger.error("database unavailable on %s %s: %s", request.method, request.path, name)
            return database_unavailable(request)
        return None


class StaffMiddleware:
    """Run settings.STAFF_MIDDLEWARE (sessions, auth, messages, the login lockout ...) only on staff paths.

    Public pages (the form, the thank-you page, the person's own pages) read no session and no user, so
    every signup used to pay for middleware only staff need. Staff paths are the admin (ADMIN_URL) and
    settings.STAFF_PATHS (/ops/); /ready loads a staff session itself (ops/views.py). The inner chain is
    built as Django builds MIDDLEWARE, its process_view/_exception/_template_response hooks included, with one
    difference: a database error raised by one of these middleware (the session read, the user, a session
    save) is not made a 500 where it happens, as Django's chain does before any process_exception hook
    could see it. It comes up to here: the friendly 503, and a GET that failed on a replica runs again on the
    primary (project.db.middleware.retry_on_primary), as for an error in a view.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = staff_prefixes()
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
            handler = _convert_all_but_database_errors(middleware)
        self.staff_chain = handler

    def _is_staff(self, request) -> bool:
        return request.path_info.startswith(self.prefixes)

    def __call__(self, request):
        if not self._is_staff(request):
            return self.get_response(request)
        try:
            return self.staff_chain(request)
        except DATABASE_ERRORS as exc:
            again = "; running it again on the primary" if retry_on_primary(request, exc) else ""
            logger.error("database unavailable in the staff middleware on %s %s: %s%s", request.method,
                         request.path, exc.__class__.__name__, again)  # fmt: skip
            return database_unavailable(request)

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


def _convert_all_but_database_errors(get_response):
    """Django's convert_exception_to_response (an exception becomes its 4xx/500 response), letting database
    errors through to StaffMiddleware."""

    @functools.wraps(get_response)
    def inner(request):
        try:
            return get_response(request)
        except DATABASE_ERRORS:
            raise
        except Exception as exc:
            return response_for_exception(request, exc)

    return inner


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the site-wide header built once per process instead of twice per response.

    django-csp builds the policy and the report-only policy from the settings for every response. A response
    without per-view changes (@csp_update, @csp_replace, @csp) or a nonce gets the same strings each time, so
    they are built once (again after a settings change, for tests); anything else goes the library's way.
    """

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _CSP_PER_RESPONSE
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:  # the library leaves debug pages alone
            return response
        for header, policy, exempt, prefixes in _site_policies():
            if (
                policy
                and header not in response
                and not getattr(response, exempt, False)
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = policy
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response


_CSP_PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro",
                     "_csp_replace_ro")  # fmt: skip


@functools.cache
def _site_policies() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """Return (header, policy, exemption attribute, excluded path prefixes) for the policy and the report-only one."""

    def excluded(setting: str) -> tuple[str, ...]:
        return tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())

    return (
        (HEADER, build_policy(), "_csp_exempt", excluded("CONTENT_SECURITY_POLICY")),
        (HEADER_REPORT_ONLY, build_policy(report_only=True), "_csp_exempt_ro",
         excluded("CONTENT_SECURITY_POLICY_REPORT_ONLY")),
    )  # fmt: skip


@receiver(setting_changed)
def _csp_settings_changed(setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _site_policies.cache_clear()
