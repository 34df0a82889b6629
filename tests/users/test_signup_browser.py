"""The signup form in a real headless Chromium, on a phone-sized screen, without JavaScript."""

import pytest

from tests.conftest import OUTPUT
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def test_a_person_signs_up_on_a_phone_by_the_labels(phone, app_server):
    OUTPUT.mkdir(exist_ok=True)
    phone.goto(f"{app_server.url}/signup/")
    phone.get_by_label("Full name").fill("Mary Jackson")
    phone.get_by_label("Email address").fill("mary@example.com")
    phone.get_by_label("Country (optional)").select_option("US")
    phone.get_by_label("Phone (optional)").fill("+1 202 555 0143")
    phone.get_by_label("Yes, you may contact me").check()
    honeypot = phone.get_by_label("Leave this field empty").bounding_box()
    assert honeypot["x"] + honeypot["width"] <= 0  # the honeypot is off screen, people never see it
    # nothing overflows sideways on a 375 px screen
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.screenshot(path=OUTPUT / "signup-form-phone.png", full_page=True)
    phone.get_by_role("button", name="Sign up").click()
    phone.wait_for_url("**/signup/thanks/")
    assert phone.get_by_role("heading", level=1).inner_text() == "Thank you, Mary Jackson"
    phone.screenshot(path=OUTPUT / "signup-thanks-phone.png", full_page=True)
    row = Signup.objects.using("default").get(email="mary@example.com")
    assert row.phone == "+12025550143" and row.consent


def test_field_errors_are_shown_next_to_the_fields(phone, app_server):
    phone.goto(f"{app_server.url}/signup/")
    phone.get_by_label("Email address").fill("not an email")
    phone.get_by_role("button", name="Sign up").click()
    assert phone.get_by_role("alert").is_visible()
    assert phone.locator("#id_full_name_error").inner_text() == "Please tell us your name."
    assert "valid email" in phone.locator("#id_email_error").inner_text()
    email = phone.get_by_label("Email address")
    assert email.get_attribute("aria-invalid") == "true"
    assert email.get_attribute("aria-describedby") == "id_email_error"
    phone.screenshot(path=OUTPUT / "signup-errors-phone.png", full_page=True)
    assert not Signup.objects.using("default").exists()
