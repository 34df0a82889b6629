"""The admin's downloads in a real Chromium: each says it started and the export is confirmed afterwards."""

import csv
import io
from pathlib import Path

import pytest

from tests.staff.conftest import PASSWORD, make_staff
from users.models import Signup, SignupExport

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


@pytest.fixture
def staff_page(browser, app_server, pg):
    make_staff()
    Signup.objects.create(full_name="Dorothy Vaughan", email="dorothy@example.com", phone="+442079460958")
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


def test_the_csv_button_downloads_and_says_so(staff_page):
    with staff_page.expect_download() as download:
        staff_page.get_by_role("button", name="Export CSV (1)").click()
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert [row["phone"] for row in csv.DictReader(io.StringIO(body))] == ["+442079460958"]
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
