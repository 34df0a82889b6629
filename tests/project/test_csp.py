"""The Content-Security-Policy header: built once per process, the same as django-csp's own middleware builds."""

from unittest import mock

import csp.middleware
import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from project import middleware


def _through(cls, response_attrs=None, path="/"):
    def view(request):
        response = HttpResponse("ok")
        for name, value in (response_attrs or {}).items():
            setattr(response, name, value)
        return response

    return cls(view)(RequestFactory().get(path))


@pytest.mark.parametrize(
    "attrs",
    [{}, {"_csp_update": {"img-src": ["https://cdn.example.org"]}}, {"_csp_exempt": True},
     {"_csp_replace": {"script-src": None}}],
)  # fmt: skip
def test_the_header_is_what_django_csp_builds(attrs):
    ours, theirs = _through(middleware.CSPMiddleware, attrs), _through(csp.middleware.CSPMiddleware, attrs)
    assert ours.get("Content-Security-Policy") == theirs.get("Content-Security-Policy")
    assert ours.get("Content-Security-Policy-Report-Only") == theirs.get("Content-Security-Policy-Report-Only")


def test_the_site_policy_is_built_once_not_twice_per_response():
    middleware._site_policies.cache_clear()
    with mock.patch.object(middleware, "build_policy", wraps=middleware.build_policy) as build:
        for _ in range(5):
            assert "default-src 'none'" in _through(middleware.CSPMiddleware)["Content-Security-Policy"]
    assert build.call_count == 2  # the policy and the (empty) report-only policy, once each


def test_a_settings_change_is_picked_up(settings):
    assert "default-src 'none'" in _through(middleware.CSPMiddleware)["Content-Security-Policy"]
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"]}}
    response = _through(middleware.CSPMiddleware)
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'self'"
