"""Staff-only middleware (sessions, auth, messages, the login lockout) runs on staff pages only."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.mark.parametrize("path", ["/", "/signup/", "/privacy/", "/my-data/"])
def test_public_pages_run_without_session_or_user(client, path, settings):
    response = client.get(path)
    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "user")
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_a_public_post_keeps_csrf_protection():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/signup/", {"consent": "on", "full_name": "Ada", "email": "ada@example.com"}).status_code == 403


@pytest.mark.parametrize("path", ["/admin/login/", "/ops/"])
def test_staff_pages_get_the_session_and_user(client, path):
    request = client.get(path).wsgi_request
    assert hasattr(request, "session") and request.user.is_anonymous


def test_staff_login_works_through_the_staff_chain(django_user_model):
    django_user_model.objects.create_user("desk", password="a-long-test-password", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    token = page.context["csrf_token"]
    form = {"username": "desk", "password": "a-long-test-password", "csrfmiddlewaretoken": str(token)}
    reply = client.post("/admin/login/?next=/admin/", form, REMOTE_ADDR="203.0.113.9")
    assert reply.status_code == 302 and reply["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_staff_middleware_list_without_sessions_fails_the_system_check(settings):
    settings.STAFF_MIDDLEWARE = [m for m in settings.STAFF_MIDDLEWARE if "sessions" not in m]
    with pytest.raises(SystemCheckError, match=r"project\.E001"):
        call_command("check")
