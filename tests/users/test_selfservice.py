"""The person's own pages: see, download, withdraw, erase; one-click unsubscribe; "send me my link"."""

import json

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.users.mail import link, run_queue, sign_up
from users import tokens
from users.models import ConsentEvent, Erasure, Signup
from users.selfservice import address_key
from users.tasks import email_tasks

pytestmark = pytest.mark.usefixtures("live_db")


def _row() -> Signup:
    return Signup.objects.using("default").get()


@pytest.fixture
def person(client):
    """Ada, signed up and confirmed; returns the paths of the links in her confirmation email."""
    sign_up(client)
    run_queue()
    message = mail.outbox[0]
    client.post(link(message, "/signup/confirm/"), REMOTE_ADDR="203.0.113.9")
    paths = {"manage": link(message, "/my-data/"), "unsubscribe": link(message, "/my-data/unsubscribe/")}
    assert "/unsubscribe/" not in paths["manage"]  # the manage link comes first in every email
    return paths


def _cached_keys_of(address: str) -> list[str]:
    return [key for key in cache.keys("*") if address_key(address) in key]  # django-redis: real Redis keys


def test_every_email_carries_a_manage_link_that_shows_what_we_hold(client, person):
    page = client.get(person["manage"])
    body = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    for shown in ("Ada Lovelace", "ada@example.com", "198.51.100.23", "consent given (signup form)",
                  "address confirmed (double opt-in)", "203.0.113.9"):  # fmt: skip
        assert shown in body


def test_download_gives_the_row_and_its_ledger_as_json(client, person):
    assert client.get(person["manage"].rstrip("/") + "/download/").status_code == 405  # GET changes/gives nothing
    response = client.post(person["manage"] + "download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["signup"]["email"] == "ada@example.com" and data["signup"]["confirmed_ip"] == "203.0.113.9"
    assert [e["kind"] for e in data["consent_ledger"]] == ["given", "confirmed"]
    assert data["consent_ledger"][0]["wording_version"] == _row().consent_version


def test_withdraw_is_one_post_and_immediate(client, person):
    response = client.post(person["manage"] + "withdraw/", REMOTE_ADDR="203.0.113.10")
    assert response.status_code == 302
    row = _row()
    assert row.withdrawn_at is not None and not row.consent
    event = row.events.get(kind=ConsentEvent.WITHDRAWN)
    assert event.ip == "203.0.113.10"
    client.post(person["manage"] + "withdraw/")
    assert row.events.filter(kind=ConsentEvent.WITHDRAWN).count() == 1  # once
    assert "withdrawn" in client.get(person["manage"]).content.decode()


def test_one_click_unsubscribe_needs_no_csrf_token_and_a_get_changes_nothing(person):
    strict = Client(enforce_csrf_checks=True)
    assert strict.get(person["unsubscribe"]).status_code == 200
    assert _row().withdrawn_at is None  # a mail scanner's GET
    response = strict.post(person["unsubscribe"], {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert _row().withdrawn_at is not None
    assert _row().events.filter(kind=ConsentEvent.WITHDRAWN).count() == 1


def test_the_unsubscribe_token_opens_only_unsubscribe(client, person):
    token = person["unsubscribe"].split("/")[3]
    assert client.get(f"/my-data/{token}/").status_code == 400
    assert client.post(f"/my-data/{token}/withdraw/").status_code == 400
    assert _row().withdrawn_at is None


def test_erase_needs_a_post_and_leaves_no_personal_data_anywhere(client, person):
    assert client.get(person["manage"] + "erase/").status_code == 200
    assert _row().full_name == "Ada Lovelace"  # the GET only asks
    client.post("/my-data/", {"email": "ada@example.com"})  # leaves a per-address counter in the cache
    run_queue()
    assert _cached_keys_of("ada@example.com")
    response = client.post(person["manage"] + "erase/", follow=True)
    assert response.redirect_chain == [("/my-data/erased/", 302)] and "erased" in response.content.decode()
    row = _row()
    assert (row.full_name, row.phone, row.ip_address, row.user_agent, row.confirmed_ip) == ("", "", None, "", None)
    assert row.email == f"erased-{row.pk}@invalid"
    assert [(e.kind, e.ip) for e in row.events.all()] == [("given", None), ("confirmed", None), ("erased", None)]
    assert not email_tasks().exists()  # the outbox, sent and unsent, is gone
    assert Erasure.objects.using("default").get().username == "(the person)"
    assert _cached_keys_of("ada@example.com") == []
    assert not [key for key in cache.keys("*") if "ada" in key.lower()]
    # The old links open nothing now.
    assert client.get(person["manage"]).status_code == 400
    assert client.post(person["unsubscribe"]).status_code == 400


def test_expired_and_tampered_manage_links_get_4xx(client, person, settings):
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=__import__("time").time() + 31 * 86400):
        assert client.get(person["manage"]).status_code == 410
    assert client.get(person["manage"][:-3] + "x/").status_code == 400
    assert client.post(person["manage"][:-3] + "x/erase/").status_code == 400
    assert _row().full_name == "Ada Lovelace"


def test_send_me_my_link_answers_the_same_for_known_and_unknown_addresses(client, person):
    mail.outbox.clear()
    known = Client().post("/my-data/", {"email": "ada@example.com"})
    unknown = Client().post("/my-data/", {"email": "zed@example.com"})
    assert (
        (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (302, "/my-data/sent/")
    )
    assert sorted(known.cookies) == sorted(unknown.cookies)
    run_queue()
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"] and "manage" in message.subject.lower()
    assert client.get(link(message, "/my-data/")).status_code == 200


def test_send_me_my_link_is_limited_per_address_silently_and_per_ip_visibly(client, person, settings):
    settings.LINK_RATE_LIMIT_ADDRESS = (2, 3600)
    settings.LINK_RATE_LIMIT_IP = (4, 3600)
    mail.outbox.clear()
    answers = [Client().post("/my-data/", {"email": "ada@example.com"}, REMOTE_ADDR=f"192.0.2.{i}").status_code
               for i in range(5)]  # fmt: skip
    assert answers == [302] * 5  # the same answer: the limit per address says nothing about the address
    run_queue()
    assert len(mail.outbox) == 2
    same_ip = [client.post("/my-data/", {"email": f"x{i}@example.com"}, REMOTE_ADDR="192.0.2.99").status_code
               for i in range(5)]  # fmt: skip
    assert same_ip == [302] * 4 + [429]


def test_a_withdrawn_person_gets_no_more_confirmation_emails(client):
    sign_up(client)
    row = _row()
    token = tokens.make(tokens.MANAGE, row.pk, row.email)
    client.post(f"/my-data/{token}/withdraw/")
    run_queue()
    assert mail.outbox == []


def test_signed_link_tokens_are_masked_in_every_log_line():
    from project.requestlog import redact

    token = tokens.make(tokens.MANAGE, 42, "ada@example.com")
    line = redact(f"GET /my-data/{token}/ 200")
    assert token not in line and token.split(":")[2] not in line
    assert line.startswith("GET /my-data/") and line.endswith("/ 200")
