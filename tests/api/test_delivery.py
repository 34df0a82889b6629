"""Webhook delivery (api/delivery.py): signed per Standard Webhooks, retried, logged, never to inside addresses.

The receiver verifies every request with the `standardwebhooks` package from PyPI (tests/api/receiver.py).
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from api import delivery
from api.models import Attempt, Delivery, Endpoint, Event, new_secret
from api.runner import run_until_idle
from tests.api.receiver import Receiver
from users.erasure import erase_signup
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")


def _endpoint(receiver: Receiver, **fields) -> Endpoint:
    endpoint = Endpoint(**{"url": receiver.url(), "secret": receiver.secret, **fields})
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def _signup(email: str = "ada@example.com") -> Signup:
    return Signup.objects.create(full_name="Ada Lovelace", email=email, consent=True)


def _event(signup: Signup, kind: str = Event.CREATED) -> Event:
    return Event.objects.create(type=kind, signup_id=signup.pk)


def test_each_event_reaches_the_endpoint_signed_and_thin_by_default(receiver):
    _endpoint(receiver)
    signup = _signup()
    events = [_event(signup), _event(signup, Event.CONFIRMED)]
    run_until_idle()
    assert [r["id"] for r in receiver.received] == [f"msg_{e.pk}" for e in events]  # verified by standardwebhooks
    first = receiver.bodies()[0]
    assert first["type"] == "signup.created" and first["data"] == {"id": signup.pk} and first["timestamp"]
    assert b"ada@example.com" not in b"".join(r["raw"] for r in receiver.received)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_an_endpoint_granted_signups_read_gets_the_persons_fields_until_they_are_erased(receiver):
    _endpoint(receiver, full_payload=True)
    ada, bob = _signup(), _signup("bob@example.com")
    _event(ada), _event(bob)
    delivery.fan_out("default")  # both deliveries are pending when Bob is erased
    erase_signup(bob.pk)
    run_until_idle()
    by_id = {b["data"]["id"]: b for b in receiver.bodies()}
    assert by_id[ada.pk]["data"]["email"] == "ada@example.com"
    assert by_id[bob.pk]["data"] == {"id": bob.pk}  # the pending delivery carries nothing of him
    assert [b["type"] for b in receiver.bodies() if b["data"]["id"] == bob.pk] == ["signup.created", "signup.erased"]
    assert b"bob@" not in b"".join(r["raw"] for r in receiver.received)


def test_a_failed_delivery_is_retried_with_the_same_id_and_every_attempt_is_logged(receiver):
    _endpoint(receiver)
    event = _event(_signup())
    receiver.replies = [(500, {}, 0.0), (502, {}, 0.0)]
    run_until_idle()
    row = Delivery.objects.get()
    assert row.status == "succeeded" and row.attempts == 3
    assert list(Attempt.objects.order_by("id").values_list("status_code", flat=True)) == [500, 502, 200]
    assert {r["id"] for r in receiver.received} == {f"msg_{event.pk}"}


def test_retry_after_is_honoured(receiver):
    _endpoint(receiver)
    _event(_signup())
    receiver.replies = [(503, {"Retry-After": "120"}, 0.0)]
    run_until_idle()
    row = Delivery.objects.get()
    assert row.status == "pending" and row.next_attempt_at > timezone.now() + timedelta(seconds=100)


def test_the_schedule_ends_in_failure_after_eight_attempts(receiver):
    _endpoint(receiver)
    _event(_signup())
    receiver.replies = [(500, {}, 0.0)] * 8
    run_until_idle()
    row = Delivery.objects.get()
    assert row.status == "failed" and row.attempts == len(delivery.SCHEDULE) == 8
    assert delivery.SCHEDULE == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_410_gone_disables_the_endpoint(receiver):
    endpoint = _endpoint(receiver)
    signup = _signup()
    _event(signup), _event(signup, Event.CONFIRMED)
    receiver.replies = [(410, {}, 0.0)]
    run_until_idle()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert len(receiver.received) == 1  # the second delivery waits for the endpoint to be enabled again


def test_a_receiver_that_hangs_past_the_timeout_is_a_failed_attempt(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    _endpoint(receiver)
    _event(_signup())
    receiver.replies = [(200, {}, 2.0)]
    run_until_idle()
    first = Attempt.objects.order_by("id").first()
    assert first.status_code is None and first.error == "TimeoutError" and first.latency_ms < 1500
    assert Delivery.objects.get().status == "succeeded"


def test_during_a_rotation_both_secrets_sign(receiver):
    old = receiver.secret
    endpoint = _endpoint(receiver, secret=new_secret(), previous_secret=old,
                         previous_secret_until=timezone.now() + timedelta(hours=1))  # fmt: skip
    _event(_signup())
    run_until_idle()
    assert len(receiver.received) == 1  # verified with the old secret alone
    assert len(receiver.received[0]["headers"]["webhook-signature"].split(" ")) == 2
    endpoint.previous_secret_until = timezone.now() - timedelta(seconds=1)
    endpoint.save()
    _event(_signup("bob@example.com"))
    run_until_idle()
    assert len(receiver.received) == 1 and receiver.rejected >= 1  # the overlap is over: only the new one signs


def test_an_abandoned_delivery_is_taken_again_when_its_lease_runs_out(receiver):
    _endpoint(receiver)
    _event(_signup())
    delivery.fan_out("default")
    row = delivery.claim("default")  # a worker claimed it and was killed
    assert delivery.claim("default") is None
    Delivery.objects.filter(pk=row.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    run_until_idle()
    assert Delivery.objects.get().status == "succeeded" and Delivery.objects.get().attempts == 2


INSIDE = ["https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "https://[::1]/", "https://10.0.0.8/"]


@pytest.mark.parametrize("url", [*INSIDE, "ftp://example.com/", "http://example.com/"])
def test_inside_addresses_are_refused_at_save(url, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    with pytest.raises(ValidationError):
        Endpoint(url=url).full_clean()


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254"])
def test_inside_addresses_are_refused_at_delivery(receiver, host):
    # Saved without the check (as if its DNS answer changed after the save): the delivery checks again.
    Endpoint.objects.create(url=receiver.url(host).replace("http://", "https://"), secret=receiver.secret)
    _event(_signup())
    delivery.run_one()
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("refused:") and host in attempt.error
    assert receiver.received == [] and Delivery.objects.get().status == "pending"


def test_replay_sends_a_delivered_event_again_with_its_id(receiver):
    _endpoint(receiver)
    event = _event(_signup())
    run_until_idle()
    assert delivery.replay(Delivery.objects.get().pk, "default")
    run_until_idle()
    assert [r["id"] for r in receiver.received] == [f"msg_{event.pk}"] * 2


def test_an_endpoint_failing_for_three_days_is_disabled(receiver):
    endpoint = _endpoint(receiver)
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3, seconds=1))
    _event(_signup())
    receiver.replies = [(500, {}, 0.0)]
    delivery.run_one()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "3 days" in endpoint.disabled_reason


def test_prune_deletes_old_finished_rows_and_keeps_what_is_still_being_delivered(receiver):
    endpoint = _endpoint(receiver)
    signup = _signup()
    old, pending_old, new = _event(signup), _event(signup), _event(signup, Event.CONFIRMED)
    delivery.fan_out("default")
    Delivery.objects.filter(event=old).update(status="succeeded")
    long_ago = timezone.now() - timedelta(days=30)
    Event.objects.filter(pk__in=[old.pk, pending_old.pk]).update(at=long_ago)
    Delivery.objects.filter(event__in=[old, pending_old]).update(created_at=long_ago)
    assert delivery.prune(14, "default") == 2  # the old delivered one and its event
    assert set(Event.objects.values_list("pk", flat=True)) == {pending_old.pk, new.pk}
    assert Delivery.objects.filter(endpoint=endpoint).count() == 2


def test_the_worker_threads_deliver_and_stop_when_asked(receiver):
    import time

    from api.runner import DeliveryThreads

    _endpoint(receiver)
    _event(_signup())
    running = [True]
    threads = DeliveryThreads(2, lambda: running[0], interval=0.1)
    threads.start()
    deadline = time.monotonic() + 20
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    running[0] = False
    threads.join(10)
    assert len(receiver.received) == 1 and not any(t.is_alive() for t in threads.threads)


def test_nothing_is_delivered_while_the_worker_is_on_hold_after_a_restore(receiver):
    import time

    from api.runner import DeliveryThreads

    _endpoint(receiver, full_payload=True)
    _event(_signup())
    held, running = [True], [True]  # the worker's on_hold(): a restore not yet followed by reapply_erasures
    threads = DeliveryThreads(1, lambda: running[0], interval=0.1, held=lambda: held[0])
    threads.start()
    time.sleep(1.5)
    assert receiver.received == [] and run_until_idle(held=lambda: True) == 0
    held[0] = False  # reapply_erasures has run
    deadline = time.monotonic() + 20
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    running[0] = False
    threads.join(10)
    assert len(receiver.received) == 1
