"""Staff sign-in with the second factor in a real Chromium, against gunicorn with STAFF_OTP_REQUIRED=1."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from devenv.servers import AppServer
from tests.conftest import OUTPUT, SERVICES
from tests.staff.conftest import PASSWORD, axe_violations, code_for_secret, make_staff
from tests.users.mail import run_queue

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]

LIST = "/admin/users/signup/"


@pytest.fixture(scope="module")
def otp_server(django_db_setup):
    server = AppServer(env={**SERVICES.environ(), "STAFF_OTP_REQUIRED": "1"}, workers=1)
    server.start()
    yield server
    server.stop()


def _login(browser, server, username="staff"):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server.url}/admin/login/?next={LIST}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


def _opens_the_list(page, server) -> bool:
    page.goto(f"{server.url}{LIST}")
    return page.url.endswith(LIST) and page.get_by_role("heading", name="Select signup to view").count() == 1


def _enter(page, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_load_state()


def _invite(username: str) -> str:
    out = io.StringIO()
    call_command("invite_staff", username, stdout=out, stderr=io.StringIO())
    return "/" + out.getvalue().strip().split("/", 3)[3]


def test_the_list_opens_only_with_the_second_factor_and_a_static_token_works_once(browser, otp_server):
    from django.core import mail

    make_staff()
    make_staff("boss", email="boss@example.org")  # another superuser: told of the enrolment
    # A password alone: a page saying to ask for an enrolment link, and nothing opens.
    page = _login(browser, otp_server)
    assert "/admin/second-factor/" in page.url
    assert "Ask an administrator for an enrolment link" in page.inner_text("#content")
    page.goto(f"{otp_server.url}/admin/second-factor/setup/")
    assert "/admin/second-factor/setup/" not in page.url  # enrolment stays shut without a link
    assert not _opens_the_list(page, otp_server)
    page.context.close()
    # The enrolment link (manage.py invite_staff), opened before signing in: the password, then enrolment.
    link = _invite("staff")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(otp_server.url + link)
    assert "/admin/login/" in page.url and link not in page.url  # the token is gone from the address bar
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Set up my authenticator").click()
    page.wait_for_url("**/admin/second-factor/setup/**")
    page.screenshot(path=OUTPUT / "staff-otp-setup.png", full_page=True)
    assert axe_violations(page) == []
    assert page.locator(".otp-qr svg").count() == 1
    secret = page.get_by_test_id("otp-secret").inner_text()
    page.get_by_label("Code").fill(code_for_secret(secret))
    page.get_by_role("button", name="Confirm").click()
    codes = page.get_by_test_id("backup-codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="Continue").click()
    assert _opens_the_list(page, otp_server)
    # The same link again: a clear 4xx page.
    again = page.goto(otp_server.url + link)
    assert again.status == 410 and "already been used" in page.inner_text("#content")
    page.context.close()
    # The other superuser is told (the worker sends what the web request queued).
    mail.outbox.clear()
    run_queue()
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        ("boss@example.org", "Staff sign-in: an authenticator was enrolled for staff"),
        ("boss@example.org", "Staff sign-in: an enrolment link was made for staff"),
    ]
    # Next sign-in: the password, then a code from the app (the next 30-second step's, as a phone ahead shows).
    page = _login(browser, otp_server)
    assert "/admin/second-factor/" in page.url and not _opens_the_list(page, otp_server)
    page.goto(f"{otp_server.url}/admin/second-factor/?next={LIST}")
    page.screenshot(path=OUTPUT / "staff-otp-verify.png", full_page=True)
    assert axe_violations(page) == []
    _enter(page, code_for_secret(secret, drift=1))
    assert _opens_the_list(page, otp_server)
    page.context.close()
    # Break-glass: a static token from `manage.py addstatictoken` works once.
    out = io.StringIO()
    call_command("addstatictoken", "staff", stdout=out)
    token = out.getvalue().strip()
    page = _login(browser, otp_server)
    _enter(page, token)
    assert _opens_the_list(page, otp_server)
    page.context.close()
    page = _login(browser, otp_server)
    _enter(page, token)
    assert "That code did not work" in page.inner_text("#content")
    assert not _opens_the_list(page, otp_server)
    page.context.close()
