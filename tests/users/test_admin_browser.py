"""The admin's downloads in a real Chromium: each says it started and the export is confirmed afterwards."""

import csv
import io
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import OUTPUT
from tests.staff.conftest import PASSWORD, axe_violations, make_staff
from users.models import Signup, SignupExport

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


@pytest.fixture
def staff_page(browser, app_server, pg):
    make_staff()
    now = timezone.now()
    Signup.objects.create(full_name="Dorothy Vaughan", email="dorothy@example.com", phone="+442079460958",
                          consent=True, consent_at=now, confirmed_at=now)  # fmt: skip
    for name, fields in (("Katherine Johnson", {}), ("Mary Jackson", {"withdrawn_at": now}),
                         ("Annie Easley", {"confirmed_at": now, "email_blocked_at": now})):  # fmt: skip
        Signup.objects.create(full_name=name, email=f"{name.split()[0].lower()}@example.com", consent=True, **fields)
    pg.wait_for_replica()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{app_server.url}/admin/login/?next=/admin/users/signup/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/users/signup/")
    yield page
    context.close()


def test_the_list_shows_each_persons_status_with_a_filter(staff_page):
    statuses = staff_page.locator("td.field-status").all_inner_texts()
    assert sorted(statuses) == ["bounced or complained", "confirmed", "unconfirmed", "withdrawn"]
    staff_page.screenshot(path=OUTPUT / "admin-changelist-statuses.png", full_page=True)
    assert axe_violations(staff_page) == []
    staff_page.get_by_role("link", name="withdrawn (1)").click()
    staff_page.wait_for_url("**status=withdrawn")
    assert staff_page.locator("th.field-full_name").all_inner_texts() == ["Mary Jackson"]


def test_the_csv_button_downloads_the_contactable_people_and_says_so(staff_page):
    with staff_page.expect_download() as download:
        staff_page.get_by_role("button", name="Export contactable (CSV)").click()
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert [row["phone"] for row in csv.DictReader(io.StringIO(body))] == ["+442079460958"]  # Dorothy only
    assert "download has started" in staff_page.get_by_role("status").first.inner_text()
    assert SignupExport.objects.using("default").get().kind == "csv"


def test_the_json_download_returns_to_the_record_with_a_message(staff_page):
    staff_page.get_by_role("link", name="Dorothy Vaughan").click()
    staff_page.get_by_role("link", name="Export data (JSON)").click()
    with staff_page.expect_download():
        staff_page.get_by_role("button", name="Download JSON").click()
    staff_page.wait_for_url("**/change/")
    assert "data was exported as JSON; it is recorded under Exports" in staff_page.inner_text(".messagelist")
    assert SignupExport.objects.using("default").get().kind == "person"
