"""Every page, public and staff, satisfies the Content-Security-Policy in a real Chromium (JavaScript on)."""

import pytest
from django.contrib.auth.models import User

from tests.conftest import OUTPUT
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


def test_no_page_violates_the_content_security_policy(browser, app_server, pg):
    User.objects.create_superuser("csp-staff", "csp@example.com", "a long enough password 42")
    context = browser.new_context()
    page = context.new_page()
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    base = app_server.url
    page.goto(f"{base}/")
    assert page.evaluate("document.styleSheets.length") >= 1  # our CSS loaded under the policy
    page.goto(f"{base}/signup/")
    page.get_by_label("Full name").fill("Csp Tester")
    page.get_by_label("Email address").fill("csp-tester@example.com")
    page.get_by_label("Yes, you may contact me").check()
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/thanks/")
    pg.wait_for_replica()
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill("csp-staff")
    page.get_by_label("Password").fill("a long enough password 42")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    row = Signup.objects.using("default").get(email="csp-tester@example.com")
    for path in ("/admin/users/signup/", "/admin/users/signup/?q=csp", f"/admin/users/signup/{row.pk}/change/"):
        page.goto(f"{base}{path}")
        assert page.locator("#content").is_visible()
    page.screenshot(path=OUTPUT / "admin-change-under-csp.png", full_page=True)
    context.close()
    assert violations == []
