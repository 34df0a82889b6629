"""Staff sessions end when idle or old; the login page's heading; the favicon."""

import time

import pytest

from staff.middleware import SEEN_KEY, SINCE_KEY
from tests.staff.conftest import make_staff

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def staff_client(client):
    client.force_login(make_staff())
    return client


def _age(client, key: str, seconds: float) -> None:
    session = client.session
    session[key] = time.time() - seconds
    session.save()


def test_a_session_ends_after_the_idle_minutes(staff_client, settings):
    settings.STAFF_SESSION_IDLE_MINUTES = 30
    _age(staff_client, SEEN_KEY, 29 * 60)
    assert staff_client.get("/admin/").status_code == 200  # still inside: and the clock is renewed
    assert time.time() - staff_client.session[SEEN_KEY] < 5
    _age(staff_client, SEEN_KEY, 31 * 60)
    response = staff_client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert "_auth_user_id" not in staff_client.session


def test_a_busy_session_still_ends_after_a_working_day(staff_client, settings):
    _age(staff_client, SINCE_KEY, settings.SESSION_COOKIE_AGE + 1)
    assert staff_client.get("/admin/").status_code == 302


def test_a_request_within_the_minute_writes_no_session(staff_client):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["default"]) as primary:
        assert staff_client.get("/admin/").status_code == 200
    assert not [q for q in primary.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]


def test_the_login_page_has_a_heading(client):
    page = client.get("/admin/login/").content.decode()
    assert "<h1>Log in</h1>" in page and 'rel="icon"' in page


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon"' in client.get("/signup/").content.decode()
