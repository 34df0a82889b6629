"""The whole life of a person's data in a real Chromium, emails through moto's SES and a real worker process.

Sign up -> the email arrives -> open its link -> Confirm -> staff see it confirmed with its ledger -> the
manage link -> withdraw -> download JSON -> erase -> nothing personal left in the row, ledger, outbox or cache.
"""

import json
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.conftest import OUTPUT
from tests.users.mail import link_in as _link
from tests.users.mail import mail_to as _mail_to
from users.models import ConsentEvent, Signup
from users.tasks import email_tasks

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser, pytest.mark.slow]

PERSON = {"name": "Katherine Johnson", "email": "katherine.johnson@example.com", "phone": "+1 202 555 0199"}


def _shot(page, name: str) -> None:
    page.screenshot(path=OUTPUT / f"person-{name}.png", full_page=True)


def test_sign_up_confirm_see_withdraw_download_and_erase(browser, app_server, ses, worker):
    from django.contrib.auth.models import User

    OUTPUT.mkdir(exist_ok=True)
    User.objects.create_superuser("staff", password="a-long-test-password")
    context = browser.new_context(viewport={"width": 420, "height": 900}, accept_downloads=True)
    page = context.new_page()
    # Sign up.
    page.goto(f"{app_server.url}/signup/")
    page.get_by_label("Full name").fill(PERSON["name"])
    page.get_by_label("Email address").fill(PERSON["email"])
    page.get_by_label("Country (optional)").select_option("US")
    page.get_by_label("Phone (optional)").fill(PERSON["phone"])
    page.get_by_label("Yes, you may contact me").check()
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/thanks/")
    assert "check your inbox" in page.inner_text("main").lower()
    # The email arrives through SES; its link opens a page that changes nothing until Confirm is pressed.
    message = _mail_to(ses, PERSON["email"], "confirm")
    page.goto(_link(message, "/signup/confirm/"))
    _shot(page, "confirm")
    row = Signup.objects.using("default").get()
    assert row.confirmed_at is None
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/my-data/**")
    assert "your address is confirmed" in page.inner_text("main").lower()
    row.refresh_from_db()
    assert row.confirmed_at is not None and row.confirmed_ip == "127.0.0.1"
    # Staff see it confirmed, with the ledger.
    staff = browser.new_context().new_page()
    staff.goto(f"{app_server.url}/admin/login/?next=/admin/users/signup/{row.pk}/change/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill("a-long-test-password")
    staff.get_by_role("button", name="Log in").click()
    staff.wait_for_url(f"**/admin/users/signup/{row.pk}/change/")
    admin_text = staff.inner_text("#content")
    assert "Confirmed at" in admin_text and "127.0.0.1" in admin_text
    assert "consent given (signup form)" in admin_text and "address confirmed (double opt-in)" in admin_text
    staff.screenshot(path=OUTPUT / "person-admin.png", full_page=True)
    staff.context.close()
    # The manage link from the email: what we hold; withdraw; download.
    page.goto(_link(message, "/my-data/"))
    held = page.get_by_test_id("held").inner_text()
    assert PERSON["name"] in held and PERSON["email"] in held and "+12025550199" in held
    page.get_by_test_id("withdraw").click()
    page.wait_for_url("**?withdrawn=1")
    assert "withdrawn" in page.get_by_test_id("consent").inner_text()
    _shot(page, "manage-withdrawn")
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    data = json.loads(Path(download.value.path()).read_text())
    assert data["signup"]["email"] == PERSON["email"]
    assert [e["kind"] for e in data["consent_ledger"]] == ["given", "confirmed", "withdrawn"]
    # Erase: a confirmation page, then the POST.
    page.get_by_test_id("erase").click()
    _shot(page, "erase-confirm")
    page.get_by_test_id("erase-confirm").click()
    assert "your data is erased" in page.inner_text("main").lower()
    _shot(page, "erased")
    context.close()
    # Nothing personal is left: the row, the ledger, the outbox, the cache.
    row.refresh_from_db()
    stored = " ".join(str(getattr(row, f.attname)) for f in Signup._meta.concrete_fields).lower()
    for value in ("katherine", "johnson", "5550199", "127.0.0.1"):
        assert value not in stored
    assert row.country == ""
    events = ConsentEvent.objects.using("default").filter(signup=row)
    assert [e.kind for e in events] == ["given", "confirmed", "withdrawn", "erased"]
    assert all(e.ip is None for e in events)
    assert not email_tasks().exists()
    for key in cache.keys("*"):  # nor their IP (rate-limit counters)
        assert "katherine" not in key.lower() and "katherine" not in str(cache.get(key)).lower()
        assert "127.0.0.1" not in key
    # The emailed links open nothing any more.
    assert app_server and _status(_link(message, "/my-data/")) == 400


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as err:
        return err.code
