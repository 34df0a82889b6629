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
