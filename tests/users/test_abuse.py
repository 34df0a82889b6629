"""Abuse protection: signup rate limit per client IP (behind the ALB), admin login lockout with cool-off."""

import datetime as dt
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")
ALB = "10.0.1.17"  # REMOTE_ADDR as gunicorn sees it behind the load balancer


@pytest.fixture
def limited(settings):
    settings.SIGNUP_RATE_LIMIT = (3, 600)
    settings.TRUSTED_PROXY_COUNT = 1


def _signup(client, n: int, xff: str):
    data = {"consent": "on", "full_name": f"Person {n}", "email": f"p{n}@example.com"}
    return client.post("/signup/", data, REMOTE_ADDR=ALB, HTTP_X_FORWARDED_FOR=xff)


def test_the_signup_after_the_limit_is_refused_with_a_clear_message(client, limited):
    for n in range(3):
        assert _signup(client, n, "203.0.113.7").status_code == 302
    refused = _signup(client, 3, "203.0.113.7")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many signups have come from your network" in refused.content.decode()
    assert not Signup.objects.using("default").filter(email="p3@example.com").exists()


def test_a_rotating_forged_forwarded_header_does_not_escape_the_limit(client, limited):
    # The client controls everything left of the ALB's own entry: it changes it on every request.
    replies = [_signup(client, n, f"198.18.{n}.{n}, 203.0.113.7") for n in range(5)]
    assert [r.status_code for r in replies] == [302, 302, 302, 429, 429]


def test_other_ips_are_unaffected(client, limited):
    for n in range(4):
        _signup(client, n, "203.0.113.7")
    assert _signup(client, 10, "203.0.113.99").status_code == 302


def test_the_limit_fails_open_when_redis_is_down(client, limited, redis_server):
    redis_server.stop()
    try:
        replies = [_signup(client, n, "203.0.113.7").status_code for n in range(5)]
    finally:
        redis_server.start()
    assert replies == [302] * 5


# --- admin login lockout --------------------------------------------------------------------------------
@pytest.fixture
def staff(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(seconds=2)
    return User.objects.create_user("ops-staff", password="correct horse battery staple", is_staff=True)


def _login(password: str, username: str = "ops-staff", ip: str = "203.0.113.50"):
    client = Client()
    data = {"username": username, "password": password, "next": "/admin/"}
    return client.post("/admin/login/", data, REMOTE_ADDR=ip)


def test_admin_login_locks_out_after_the_failures_and_cool_off_lifts_it(staff):
    for _ in range(2):
        assert _login("wrong password").status_code == 200  # the form again, with an error
    assert _login("wrong password").status_code == 429  # the third failure locks the (IP, username) pair
    locked = _login("correct horse battery staple")  # even the right password, while locked
    assert locked.status_code == 429
    assert "Sign-in temporarily locked" in locked.content.decode()
    assert locked["Retry-After"] == "2"  # the cool-off, in seconds
    assert _login("correct horse battery staple", ip="198.51.100.8").status_code == 302  # another IP: fine
    time.sleep(2.2)
    assert _login("correct horse battery staple").status_code == 302  # cool-off over
