"""Every change a webhook announces writes its Event in the same transaction (api/events.py)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction

from api.models import Event
from tests.users.mail import link, run_queue, sign_up
from users import signup_store
from users.erasure import erase_signup
from users.models import Signup
from users.webhooks import block

pytestmark = pytest.mark.usefixtures("live_db")

MANAGE = "/my-data/manage/"


def _types(pk: int) -> list[str]:
    return list(Event.objects.using("default").filter(signup_id=pk).order_by("id").values_list("type", flat=True))


def _signed_up(client) -> Signup:
    assert sign_up(client).status_code == 302
    return Signup.objects.using("default").get()


def test_a_signup_writes_its_created_event_in_its_one_statement(client):
    signup = _signed_up(client)
    assert _types(signup.pk) == ["signup.created"]
    sign_up(client)  # the same address again: no new row, no new event
    assert Event.objects.using("default").count() == 1


def test_the_orm_path_writes_the_created_event_too():
    signup = Signup(full_name="Ada", email="ada@example.net", consent=True)
    assert signup_store._orm(signup, ip=None, notice_after=timedelta(hours=1), using="default")
    assert _types(signup.pk) == ["signup.created"]


def test_confirm_withdraw_and_erase_each_write_their_event_holding_no_personal_data(client):
    signup = _signed_up(client)
    run_queue()
    client.post(link(mail.outbox[0], "/signup/confirm/"))
    client.post(MANAGE + "withdraw/")
    erase_signup(signup.pk)
    assert _types(signup.pk) == ["signup.created", "signup.confirmed", "signup.withdrawn", "signup.erased"]
    fields = {f.name for f in Event._meta.concrete_fields}
    assert fields == {"id", "type", "signup_id", "at", "fanned_out"}  # nothing that could name the person


def test_a_rolled_back_confirmation_writes_no_event(client, monkeypatch):
    signup = _signed_up(client)
    run_queue()

    def fail(*args, **kwargs):
        raise RuntimeError("the transaction fails after the event was written")

    monkeypatch.setattr(transaction, "on_commit", fail)  # _confirm calls it after recording the event
    with pytest.raises(RuntimeError):
        client.post(link(mail.outbox[0], "/signup/confirm/"))
    monkeypatch.undo()
    assert Signup.objects.using("default").get().confirmed_at is None
    assert _types(signup.pk) == ["signup.created"]


def test_a_bounce_writes_one_event_per_newly_blocked_signup(client):
    signup = _signed_up(client)
    assert block(["ADA@example.com"], "bounce: General") == 1
    assert block(["ada@example.com"], "bounce: General") == 0  # already blocked: no second event
    assert _types(signup.pk) == ["signup.created", "signup.bounced"]


def test_recording_outside_a_transaction_is_refused():
    from api import events

    with pytest.raises(RuntimeError):
        events.record(Event.CONFIRMED, 1, using="default")
