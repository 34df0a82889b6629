"""A known address gets the same answer as a new one, an "already signed up" email, and no trace in logs."""

import pytest
from django.core import mail
from django.db import IntegrityError
from django.test import Client

from tests.users.mail import VALID, link, run_queue, sign_up
from users.models import Signup
from users.tasks import email_tasks

pytestmark = pytest.mark.usefixtures("live_db")

VARYING_HEADERS = {"Date", "X-Request-ID"}


def _shape(response) -> dict:
    """What an outsider sees of a response, with the values that differ by nature (ids, signatures) sized."""
    return {
        "status": response.status_code,
        "location": response.get("Location"),
        "headers": sorted(set(response.headers) - VARYING_HEADERS),
        "cookies": {
            name: (len(morsel.value), morsel["max-age"], morsel["path"], morsel["httponly"], morsel["samesite"])
            for name, morsel in response.cookies.items()
        },
        "body": response.content,
    }


def test_a_known_address_gets_exactly_the_answer_a_new_one_gets():
    assert sign_up(Client(), email="ada@example.com").status_code == 302
    known = sign_up(Client(), email="ada@example.com")  # the same address again
    new = sign_up(Client(), email="adb@example.com")  # a new one of the same length
    assert _shape(known) == _shape(new)
    assert set(known.cookies) >= {"signup_thanks"}
    # The pages after the redirect: the same bytes once the (typed) address is masked.
    pages = []
    for client, address in ((Client(), "ada@example.com"), (Client(), "adc@example.com")):
        sign_up(client, email=address)
        page = client.get("/signup/thanks/")
        assert page.status_code == 200
        pages.append(page.content.replace(address.encode(), b"ADDRESS").replace(b"csrf", b""))
    assert pages[0] == pages[1]
    assert Signup.objects.using("default").count() == 3  # ada, adb, adc: nothing created for the repeat


def test_a_known_address_is_emailed_already_signed_up_at_most_once_an_hour():
    sign_up(Client())
    run_queue()
    mail.outbox.clear()
    sign_up(Client(), full_name="Mallory", phone="")  # someone else types Ada's address
    sign_up(Client(), full_name="Mallory again")
    run_queue()
    (message,) = mail.outbox
    assert message.to == [VALID["email"]] and "already signed up" in message.subject
    assert "Mallory" not in message.body  # the email says nothing of what the stranger typed
    assert link(message, "/my-data/")
    assert Signup.objects.using("default").get().full_name == "Ada Lovelace"
    kinds = sorted(t.args_kwargs["kwargs"]["kind"] for t in email_tasks())
    assert kinds == ["already", "confirm"]


def test_an_hour_later_a_repeat_gets_another_notice():
    from datetime import timedelta

    from django.utils import timezone

    sign_up(Client())
    sign_up(Client())
    Signup.objects.using("default").update(notice_sent_at=timezone.now() - timedelta(minutes=61))
    sign_up(Client())
    kinds = sorted(t.args_kwargs["kwargs"]["kind"] for t in email_tasks())
    assert kinds == ["already", "already", "confirm"]


def test_a_duplicate_signup_leaves_no_line_holding_the_address_in_the_postgresql_log(pg):
    # The log is really read: the ORM's plain INSERT of a duplicate (what the form did before) is logged
    # with its STATEMENT, values included; the same person through the form leaves nothing.
    Signup.objects.create_unless_duplicate(full_name="Control Person", email="control.person@example.net")
    with pytest.raises(IntegrityError):
        Signup.objects.create(full_name="Control Person", email="control.person@example.net")
    before = pg.primary.log.read_text(errors="replace")
    assert "control.person@example.net" in before  # the ERROR's STATEMENT/DETAIL carries it
    offset = len(before)
    address, name = "grace.hopper@example.org", "Grace Brewster Hopper"
    for _ in range(3):
        assert sign_up(Client(), email=address, full_name=name).status_code == 302
    pg.admin_sql("SELECT pg_sleep(0.2)")  # let the server flush its log
    after = pg.primary.log.read_text(errors="replace")[offset:]
    assert address not in after.lower() and name not in after
    assert Signup.objects.using("default").filter(email=address).count() == 1
