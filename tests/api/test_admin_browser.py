"""The integrations room in a real Chromium: a superuser creates a key and an endpoint, sees a delivery in the
log, replays it (api/admin.py)."""

import pytest

from api.models import Delivery, Endpoint, Event
from api.runner import run_until_idle
from devenv.servers import AppServer
from tests.api.receiver import Receiver
from tests.conftest import SERVICES
from tests.staff.conftest import PASSWORD, make_staff

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


@pytest.fixture(scope="module")
def hooks_server(django_db_setup):
    """The app under gunicorn with the test receiver's host allowed (localhost resolves to loopback)."""
    server = AppServer(env={**SERVICES.environ(), "WEBHOOK_ALLOWED_HOSTS": "localhost"}, workers=1, threads=2)
    server.start()
    yield server
    server.stop()


def test_a_superuser_creates_a_key_and_an_endpoint_sees_a_delivery_and_replays_it(browser, hooks_server, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]  # this process delivers (the worker's loop, run_until_idle)
    receiver = Receiver("")
    make_staff()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    admin = f"{hooks_server.url}/admin/api"
    page.goto(f"{hooks_server.url}/admin/login/?next=/admin/api/apikey/add/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/api/apikey/add/")
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("signups:read").check()
    page.get_by_role("button", name="Save", exact=True).click()
    token = page.locator("#api-key").inner_text()
    assert token.startswith("sgk_") and "shown only this once" in page.content()

    page.goto(f"{admin}/endpoint/add/")
    page.get_by_label("Url").fill(receiver.url())
    page.get_by_role("button", name="Save", exact=True).click()
    receiver.secret = page.locator("code.webhook-secret").inner_text()  # shown this once, kept encrypted
    assert receiver.secret.startswith("whsec_") and "shown only this once" in page.content()
    assert receiver.secret == Endpoint.objects.using("default").get().secret
    Event.objects.using("default").create(type=Event.CONFIRMED, signup_id=42)
    run_until_idle()
    assert len(receiver.received) == 1

    page.goto(f"{admin}/delivery/")
    assert "signup.confirmed #42" in page.inner_text("#result_list")
    page.locator("th.field-id a").first.click()
    assert "200" in page.locator(".inline-group").inner_text()  # the attempt in the log
    page.goto(f"{admin}/delivery/")
    page.locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("replay")
    page.get_by_role("button", name="Go").click()
    assert "queued again" in page.inner_text(".messagelist")
    assert Delivery.objects.using("default").get().status == "pending"
    run_until_idle()
    assert len(receiver.received) == 2 and len({r["id"] for r in receiver.received}) == 1  # the same webhook-id
    context.close()
    receiver.close()
