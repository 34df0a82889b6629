"""The person's own pages: see, download, withdraw, erase; one-click unsubscribe; "send me my link".

An emailed link is exchanged at first use for a cookie and a redirect to a clean URL (users/selfservice.py);
links are revocable (users/tokens.py, Signup.link_version).
"""

import json
import re

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

MANAGE = "/my-data/manage/"
SIGNED = re.compile(r"[A-Za-z0-9_-]{8,}:[A-Za-z0-9]{4,}:[A-Za-z0-9_-]{20,}")  # any signed value (users/tokens.py)


def _row() -> Signup:
    return Signup.objects.using("default").get()


def _open(client, path: str, status: int = 200):
    """Open an emailed link as a browser does: the exchange (a redirect to a clean URL), then that page."""
    exchange = client.get(path)
    assert exchange.status_code == 302, exchange.status_code
    assert exchange["Referrer-Policy"] == "no-referrer" and "no-store" in exchange["Cache-Control"]
    assert not SIGNED.search(exchange["Location"])  # the clean URL holds no token
    page = client.get(exchange["Location"])
    assert page.status_code == status, page.status_code
    return page


@pytest.fixture
def person(client):
    """Ada, signed up and confirmed; returns the paths of the links in her confirmation email."""
    sign_up(client)
    run_queue()
    message = mail.outbox[0]
    client.post(link(message, "/signup/confirm/"), REMOTE_ADDR="203.0.113.9")
    client.cookies.clear()  # each test opens the links afresh
    paths = {"manage": link(message, "/my-data/"), "unsubscribe": link(message, "/my-data/unsubscribe/")}
    assert "/unsubscribe/" not in paths["manage"]  # the manage link comes first in every email
    return paths


def _cached_keys_of(address: str) -> list[str]:
    return [key for key in cache.keys("*") if address_key(address) in key]  # django-redis: real Redis keys


def test_every_email_carries_a_manage_link_that_shows_what_we_hold(client, person):
    page = _open(client, person["manage"])
    body = page.content.decode()
    assert "no-store" in page["Cache-Control"] and page["Referrer-Policy"] == "same-origin"
    for shown in ("Ada Lovelace", "ada@example.com", "198.51.100.23", "consent given (signup form)",
                  "address confirmed (double opt-in)", "203.0.113.9"):  # fmt: skip
        assert shown in body
    assert not SIGNED.search(body)  # the page's forms and links use the cookie, not a token


def test_the_link_is_exchanged_for_a_short_lived_path_scoped_httponly_cookie(client, person, settings):
    exchange = client.get(person["manage"])
    assert exchange.status_code == 302 and exchange["Location"] == MANAGE
    cookie = exchange.cookies["mydata"]
    assert (cookie["path"], cookie["httponly"], cookie["samesite"], cookie["secure"]) == (MANAGE, True, "Lax", "")
    assert cookie["max-age"] == settings.SELF_SERVICE_COOKIE_TTL == 1800
    assert cookie.value != person["manage"].split("/")[2]  # its own signer: the cookie is no emailed link
    assert _row().withdrawn_at is None and _row().events.count() == 2  # the exchange changes nothing
    # Without the cookie the clean URLs open nothing (410: "this link has expired, email me a new one").
    stranger = Client()
    for response in (stranger.get(MANAGE), stranger.post(MANAGE + "withdraw/"), stranger.post(MANAGE + "erase/"),
                     stranger.post(MANAGE + "download/")):  # fmt: skip
        assert response.status_code == 410 and "/my-data/" in response.content.decode()
    assert _row().withdrawn_at is None and _row().full_name == "Ada Lovelace"
    # Over HTTPS: Secure, and a __Secure- name (a plain-HTTP page cannot set it).
    settings.SESSION_COOKIE_SECURE = True
    secure = Client().get(person["manage"]).cookies["__Secure-mydata"]
    assert secure["secure"] is True and secure["httponly"] is True


def test_download_gives_the_row_and_its_ledger_as_json(client, person):
    _open(client, person["manage"])
    assert client.get(MANAGE + "download/").status_code == 405  # GET changes/gives nothing
    response = client.post(MANAGE + "download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["signup"]["email"] == "ada@example.com" and data["signup"]["confirmed_ip"] == "203.0.113.9"
    assert [e["kind"] for e in data["consent_ledger"]] == ["given", "confirmed"]
    assert data["consent_ledger"][0]["wording_version"] == _row().consent_version


def test_withdraw_is_one_post_and_immediate_and_revokes_the_emailed_links(client, person):
    _open(client, person["manage"])
    response = client.post(MANAGE + "withdraw/", REMOTE_ADDR="203.0.113.10")
    assert response.status_code == 302 and response["Location"] == MANAGE + "?withdrawn=1"
    row = _row()
    assert row.withdrawn_at is not None and not row.consent and row.link_version == 1
    event = row.events.get(kind=ConsentEvent.WITHDRAWN)
    assert event.ip == "203.0.113.10"
    client.post(MANAGE + "withdraw/")
    assert row.events.filter(kind=ConsentEvent.WITHDRAWN).count() == 1  # once
    assert "withdrawn" in client.get(MANAGE).content.decode()  # the person's own cookie was renewed
    assert Client().get(person["manage"]).status_code == 410  # the emailed link is revoked
    assert Client().post(person["unsubscribe"]).status_code == 410


def test_one_click_unsubscribe_needs_no_csrf_token_and_hands_out_no_link(person):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(person["unsubscribe"], {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "unsubscribed" in response.content.decode()
    assert _row().withdrawn_at is not None
    assert _row().events.filter(kind=ConsentEvent.WITHDRAWN).count() == 1
    body = response.content.decode()
    assert not SIGNED.search(body) and MANAGE not in body  # no manage link, no signed value of any kind
    assert not SIGNED.search(str(response.headers)) and "mydata" not in response.cookies
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_unsubscribe_link_serves_a_form_and_only_the_post_acts(person):
    strict = Client(enforce_csrf_checks=True)
    page = _open(strict, person["unsubscribe"])
    assert _row().withdrawn_at is None  # a mail scanner's GET (and the page after it) changes nothing
    assert 'data-testid="unsubscribe"' in page.content.decode()
    csrf = strict.cookies["csrftoken"].value
    done = strict.post("/my-data/unsubscribe/", {"csrfmiddlewaretoken": csrf})
    assert done.status_code == 200 and _row().withdrawn_at is not None
    body = done.content.decode()
    assert not SIGNED.search(body) and MANAGE not in body and "mydata" not in done.cookies
    assert strict.cookies["unsubscribe"].value == ""  # the cookie is dropped once used


def test_the_unsubscribe_link_and_its_cookie_open_only_unsubscribe(client, person):
    token = person["unsubscribe"].split("/")[3]
    assert client.get(f"/my-data/{token}/").status_code == 400
    assert client.get(f"/signup/confirm/{token}/").status_code == 400
    _open(client, person["unsubscribe"])
    assert client.get(MANAGE).status_code == 410  # its cookie is not sent there (path), and has another name
    client.cookies["mydata"] = client.cookies["unsubscribe"].value  # nor would it open the page if it were
    assert client.get(MANAGE).status_code == 400
    client.cookies["mydata"] = client.cookies["unsubscribe"].value  # (the 400 page dropped it)
    assert client.post(MANAGE + "withdraw/").status_code == 400
    assert _row().withdrawn_at is None


def test_erase_needs_a_post_and_leaves_no_personal_data_anywhere(client, person):
    _open(client, person["manage"])
    assert client.get(MANAGE + "erase/").status_code == 200
    assert _row().full_name == "Ada Lovelace"  # the GET only asks
    Client().post("/my-data/", {"email": "ada@example.com"})  # leaves a per-address counter in the cache
    assert _cached_keys_of("ada@example.com")
    client.cookies["mydata"] = tokens.for_signup(tokens.MANAGE, _row(), cookie=True)  # at the new link version
    response = client.post(MANAGE + "erase/", follow=True)
    assert response.redirect_chain == [("/my-data/erased/", 302)] and "erased" in response.content.decode()
    row = _row()
    assert (row.full_name, row.phone, row.ip_address, row.user_agent, row.confirmed_ip) == ("", "", None, "", None)
    assert row.email == f"erased-{row.pk}@invalid" and row.link_version == 2
    assert [(e.kind, e.ip) for e in row.events.all()] == [("given", None), ("confirmed", None), ("erased", None)]
    assert not email_tasks(row.pk).exists()  # the outbox, sent and unsent, is gone
    assert Erasure.objects.using("default").get().username == "(the person)"
    assert _cached_keys_of("ada@example.com") == []
    assert not [key for key in cache.keys("*") if "ada" in key.lower()]
    # The old links and the cookie open nothing now.
    assert client.cookies["mydata"].value == ""
    assert Client().get(person["manage"]).status_code == 400
    assert Client().post(person["unsubscribe"]).status_code == 400


def test_expired_and_tampered_manage_links_get_4xx(client, person, settings):
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=__import__("time").time() + 31 * 86400):
        assert client.get(person["manage"]).status_code == 410
    assert client.get(person["manage"][:-3] + "x/").status_code == 400
    assert client.get(person["manage"][:-3] + "x/").get("Referrer-Policy") == "no-referrer"
    client.cookies["mydata"] = "WzEsImFiYyIsMF0:1xaFpl:" + "x" * 43
    assert client.post(MANAGE + "erase/").status_code == 400
    assert _row().full_name == "Ada Lovelace"


def test_the_cookie_lives_minutes_not_days(client, person, settings):
    from unittest import mock

    _open(client, person["manage"])
    later = __import__("time").time() + settings.SELF_SERVICE_COOKIE_TTL + 5
    with mock.patch("django.core.signing.time.time", return_value=later):
        assert client.get(MANAGE).status_code == 410  # even if the browser kept the cookie
        assert client.get(person["manage"]).status_code == 302  # the emailed link itself still works


def test_an_old_manage_link_after_send_me_a_new_link_gets_a_4xx_page(client, person):
    old = Client()
    _open(old, person["manage"])  # someone holds the old link, and its cookie
    mail.outbox.clear()
    assert Client().post("/my-data/", {"email": "ada@example.com"}).status_code == 302
    run_queue()
    (message,) = mail.outbox
    new = link(message, "/my-data/")
    assert new != person["manage"]
    refused = Client().get(person["manage"])
    assert refused.status_code == 410 and "This link has expired" in refused.content.decode()
    assert "mydata" not in refused.cookies
    assert old.get(MANAGE).status_code == 410 and old.post(MANAGE + "download/").status_code == 410
    assert Client().post(person["unsubscribe"]).status_code == 410  # the old email's links are all revoked
    assert "Ada Lovelace" in _open(Client(), new).content.decode()  # the new one works
    assert _row().withdrawn_at is None and _row().link_version == 1


def test_confirm_link_is_exchanged_too_and_confirming_opens_the_manage_page(client):
    sign_up(client)
    run_queue()
    path = link(mail.outbox[0], "/signup/confirm/")
    page = _open(client, path)
    assert 'data-testid="confirm"' in page.content.decode() and "ada@example.com" in page.content.decode()
    assert client.cookies["confirm"]["path"] == "/signup/confirm/"
    assert _row().confirmed_at is None  # GETs change nothing
    response = client.post("/signup/confirm/", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302 and response["Location"] == MANAGE + "?confirmed=1"
    assert _row().confirmed_at is not None and _row().confirmed_ip == "203.0.113.9"
    assert "your address is confirmed" in client.get(response["Location"]).content.decode().lower()
    assert client.get(path).status_code == 409  # used


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
    _open(client, link(message, "/my-data/"))


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
    client.cookies["mydata"] = tokens.for_signup(tokens.MANAGE, row, cookie=True)
    assert client.post(MANAGE + "withdraw/").status_code == 302
    run_queue()
    assert mail.outbox == []


def test_signed_link_tokens_are_masked_in_every_log_line():
    from project.requestlog import redact

    token = tokens.make(tokens.MANAGE, 42, "ada@example.com")
    line = redact(f"GET /my-data/{token}/ 200")
    assert token not in line and token.split(":")[2] not in line
    assert line.startswith("GET /my-data/") and line.endswith("/ 200")
