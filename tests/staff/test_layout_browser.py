"""Real data in a real Chromium: a 150-character unbroken name at 1280 and 375 px, and axe-core on the pages."""

from __future__ import annotations

import pytest

from tests.conftest import OUTPUT
from tests.staff.conftest import PASSWORD, axe_violations, make_staff
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]

LONG_NAME = ("Wolfeschlegelsteinhausenbergerdorff" * 5)[:150]  # the longest name the form takes, unbroken
WIDTHS = [1280, 375]


def _overflow(page) -> int:
    """Pixels the page is wider than the window (0: nothing is cut off or needs sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _staff_page(browser, server, width: int):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{server.url}/admin/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_the_changelist_keeps_its_columns_with_a_150_character_name(browser, app_server, pg, width):
    make_staff()
    Signup.objects.create(full_name=LONG_NAME, email="long.name@example.com", country="DE")
    Signup.objects.create(full_name="Ada Lovelace", email="ada@example.org", country="GB")
    pg.wait_for_replica()
    page = _staff_page(browser, app_server, width)
    page.goto(f"{app_server.url}/admin/users/signup/")
    page.screenshot(path=OUTPUT / f"staff-changelist-long-name-{width}.png", full_page=True)
    assert LONG_NAME in page.inner_text("#result_list")
    assert _overflow(page) <= 0
    name = page.locator("#result_list th.field-full_name").first.bounding_box()
    assert name["width"] < width / 2  # the name wraps in its column
    if width >= 1280:  # every column in view; on a phone the table scrolls sideways inside its box instead
        results = page.locator("#changelist .results")
        assert results.evaluate("e => e.scrollWidth - e.clientWidth") <= 0
        for header in page.locator("#result_list thead th").all():
            box = header.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
    page.goto(f"{app_server.url}/admin/users/signup/{Signup.objects.get(email='long.name@example.com').pk}/change/")
    page.screenshot(path=OUTPUT / f"staff-record-long-name-{width}.png", full_page=True)
    assert _overflow(page) <= 0
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_thank_you_page_wraps_a_150_character_name(browser, app_server, width):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{app_server.url}/signup/")
    page.get_by_label("Full name").fill(LONG_NAME)
    page.get_by_label("Email address").fill(f"long{width}@example.com")
    page.get_by_label("Yes, you may contact me").check()
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/thanks/")
    page.screenshot(path=OUTPUT / f"thanks-long-name-{width}.png", full_page=True)
    heading = page.get_by_role("heading", level=1)
    assert LONG_NAME in heading.inner_text()
    assert _overflow(page) <= 0
    assert heading.evaluate("e => e.scrollWidth - e.clientWidth") <= 0  # the name wraps inside its box
    page.context.close()


def test_axe_finds_no_violations_on_the_public_pages_and_the_admin_login(browser, app_server):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    assert any(v.startswith("image-alt") for v in axe_violations(page))  # the engine runs and reports
    found = {}
    for path in ["/", "/signup/", "/my-data/", "/privacy/", "/admin/login/"]:
        page.goto(app_server.url + path)
        found[path] = axe_violations(page)
    page.goto(app_server.url + "/signup/")
    page.get_by_role("button", name="Sign up").click()  # the form with its errors
    page.wait_for_load_state()
    found["/signup/ (errors)"] = axe_violations(page)
    page.get_by_label("Full name").fill("Grace Hopper")
    page.get_by_label("Email address").fill("grace@example.com")
    page.get_by_label("Yes, you may contact me").check()
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/thanks/")
    found["/signup/thanks/"] = axe_violations(page)
    page.goto(app_server.url + "/my-data/")
    page.get_by_label("Email address").fill("grace@example.com")
    page.get_by_role("button").first.click()
    page.wait_for_load_state()
    found[page.url.removeprefix(app_server.url)] = axe_violations(page)
    page.context.close()
    assert {path: v for path, v in found.items() if v} == {}
    assert len(found) == 8
