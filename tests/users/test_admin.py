import datetime as dt

import pytest
from django.utils import timezone

from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

URL = "/admin/users/signup/"


@pytest.fixture
def signups(pg):
    now = timezone.now()
    rows = [
        Signup.objects.create(full_name="Old Timer", email="old@example.com", country="FR",
                              created_at=now - dt.timedelta(days=40)),
        Signup.objects.create(full_name="Mid Way", email="mid@example.org", country="GB", consent=True,
                              created_at=now - dt.timedelta(days=3)),
        Signup.objects.create(full_name="New Comer", email="new@example.net", country="GB", created_at=now),
    ]  # fmt: skip
    pg.wait_for_replica()
    return rows


def _names(response):
    return [row.full_name for row in response.context["cl"].result_list]


def test_changelist_is_newest_first(staff_client, signups):
    assert _names(staff_client.get(URL)) == ["New Comer", "Mid Way", "Old Timer"]


def test_search_by_name_and_email(staff_client, signups):
    assert _names(staff_client.get(URL, {"q": "mid way"})) == ["Mid Way"]
    assert _names(staff_client.get(URL, {"q": "example.net"})) == ["New Comer"]


def test_filters_by_country_consent_and_created_date(staff_client, signups):
    assert _names(staff_client.get(URL, {"country": "GB"})) == ["New Comer", "Mid Way"]
    assert _names(staff_client.get(URL, {"consent__exact": "1"})) == ["Mid Way"]
    since = (timezone.now() - dt.timedelta(days=7)).isoformat()
    assert _names(staff_client.get(URL, {"created_at__gte": since})) == ["New Comer", "Mid Way"]


def test_collected_fields_are_read_only_and_nobody_adds_records(staff_client, signups):
    page = staff_client.get(f"{URL}{signups[0].pk}/change/")
    assert page.status_code == 200
    assert 'name="email"' not in page.content.decode()  # shown, not editable
    assert "old@example.com" in page.content.decode()
    assert staff_client.get(f"{URL}add/").status_code == 403


def test_the_public_cannot_reach_the_admin(client, signups):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_records_are_read_only_without_save_buttons_and_a_post_changes_nothing(staff_client, signups):
    from django.contrib.admin.models import LogEntry

    url = f"{URL}{signups[0].pk}/change/"
    page = staff_client.get(url).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page and 'name="_addanother"' not in page
    response = staff_client.post(url, {"full_name": "Changed", "_save": "Save"})
    assert response.status_code == 403
    signups[0].refresh_from_db()
    assert signups[0].full_name == "Old Timer" and not LogEntry.objects.exists()


def test_labels_filters_and_counts_read_right(staff_client, signups):
    signups[0].ip_address = "192.0.2.7"
    signups[0].save()
    record = staff_client.get(f"{URL}{signups[0].pk}/change/").content.decode()
    assert "IP address" in record and "Ip address" not in record and "192.0.2.7" in record
    listing = staff_client.get(URL).content.decode()
    assert "<summary> By country </summary>" in listing  # a space after the admin's marker
    assert "Show all" not in listing  # the whole list: nothing more to show
    searched = staff_client.get(URL, {"q": "mid"}).content.decode()
    assert "1 result" in searched and "Show all" in searched


def test_an_erased_record_offers_no_export(staff_client, signups):
    from users.erasure import erase_signup

    erase_signup(signups[0].pk, None)
    page = staff_client.get(f"{URL}{signups[0].pk}/change/").content.decode()
    assert "Export data (JSON)" not in page and "Erase person" not in page
    response = staff_client.post(f"{URL}{signups[0].pk}/export-json/")
    assert response.status_code == 302  # back to the record, with a message; nothing exported
