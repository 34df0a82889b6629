"""The webhooks' admin (api/admin.py): superusers only; endpoints checked at save; the log; replay by POST."""

import pytest
from django.contrib.auth.models import User

from api.models import Attempt, Delivery, Endpoint, Event

pytestmark = pytest.mark.usefixtures("live_db")

ADMIN = "/admin/api/"


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_user("root", password="x-long-password", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def delivered():
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/in")
    event = Event.objects.create(type=Event.CONFIRMED, signup_id=7, fanned_out=True)
    row = Delivery.objects.create(endpoint=endpoint, event=event, status="failed", attempts=8, last_status_code=500)
    Attempt.objects.create(delivery=row, status_code=500, latency_ms=42, response_excerpt="upstream broke")
    return row


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/"])
def test_an_endpoint_at_an_inside_address_is_refused_at_save(superuser_client, url):
    response = superuser_client.post(ADMIN + "endpoint/add/", {"url": url, "event_types": "[]", "enabled": "on"})
    assert response.status_code == 200 and "Refused" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_the_log_shows_every_attempt(superuser_client, delivered):
    page = superuser_client.get(f"{ADMIN}delivery/{delivered.pk}/change/").content.decode()
    assert (
        "upstream broke" in page
        and "42" in page
        and "signup.confirmed #7" in superuser_client.get(ADMIN + "delivery/").content.decode()
    )


def test_replay_is_a_post_that_queues_the_delivery_again(superuser_client, delivered):
    superuser_client.get(ADMIN + "delivery/?action=replay&_selected_action=" + str(delivered.pk))  # a GET: nothing
    assert Delivery.objects.get().status == "failed"
    response = superuser_client.post(ADMIN + "delivery/", {"action": "replay", "_selected_action": [delivered.pk]})
    assert response.status_code == 302
    assert Delivery.objects.get().status == "pending"


def test_staff_who_are_not_superusers_see_none_of_it(client, delivered):
    client.force_login(User.objects.create_user("clerk", password="x-long-password", is_staff=True))
    assert client.get(ADMIN + "delivery/").status_code == 403
    assert client.post(ADMIN + "delivery/", {"action": "replay", "_selected_action": [delivered.pk]}).status_code == 403
    assert Delivery.objects.get().status == "failed"


def test_a_key_is_shown_once_and_only_its_hash_is_kept(superuser_client):
    from api import keys
    from api.models import ApiKey

    response = superuser_client.post(ADMIN + "apikey/add/", {"name": "CRM", "scopes": ["signups:read"]})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = response.context["token"]
    assert token.startswith("sgk_") and token in response.content.decode()
    key = ApiKey.objects.get()
    assert key.hashed == keys.digest(token) and token not in str(ApiKey.objects.values().get())
    assert key.created_by.username == "root" and key.scopes == ["signups:read"]
    assert token not in superuser_client.get(f"{ADMIN}apikey/{key.pk}/change/").content.decode()
    superuser_client.post(ADMIN + "apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert keys.find(token) is None
