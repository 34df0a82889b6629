"""An endpoint the worker disables (410 Gone, or failing for days) is emailed to the superusers who can act:
through the queue, sent by a real `manage.py worker` to moto's SES, read back from moto (api/notices.py)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

from api import delivery
from api.models import Endpoint, Event
from tests.api.receiver import Receiver
from tests.users.mail import mail_to, recipients, sent_mail, start_worker, stop, text_of, verify_sender, worker_env
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")
TASK = "api.tasks.send_endpoint_disabled"


@pytest.fixture
def ses(moto_server):
    moto_server.reset()
    verify_sender(moto_server.url)
    return moto_server


def _people() -> dict[str, User]:
    """Superusers with and without a second factor or an address, and a staff member who is no superuser."""
    made = {}
    for name, superuser, email, device in [("alice", True, "alice@example.org", TOTPDevice),
                                           ("brook", True, "brook@example.org", StaticDevice),
                                           ("carol", True, "carol@example.org", None),
                                           ("dan", True, "", TOTPDevice),
                                           ("erin", False, "erin@example.org", TOTPDevice)]:  # fmt: skip
        user = User.objects.create_user(name, email, "a-long-test-password", is_staff=True, is_superuser=superuser)
        if device is not None:
            device.objects.create(user=user, name="default", confirmed=True)
        made[name] = user
    TOTPDevice.objects.create(user=made["carol"], name="unfinished", confirmed=False)  # enrolment never completed
    return made


def _endpoint_and_event(receiver: Receiver) -> tuple[Endpoint, Signup]:
    url = receiver.url() + "?token=receiver-secret-in-query"
    endpoint = Endpoint.objects.create(url=url, secret=receiver.secret, description="CRM sync")
    signup = Signup.objects.create(full_name="Grace Hopper", email="grace@example.com", consent=True)
    Event.objects.create(type=Event.CREATED, signup_id=signup.pk)
    return endpoint, signup


@pytest.mark.parametrize("failure", ["gone", "failing for days"])
def test_a_disabled_endpoint_is_emailed_to_the_superusers_with_a_second_factor(receiver, ses, tmp_path, failure):
    people = _people()
    endpoint, _ = _endpoint_and_event(receiver)
    if failure == "gone":
        receiver.replies = [(410, {}, 0.0)]
    else:
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3, seconds=1))
        receiver.replies = [(500, {}, 0.0)]
    delivery.run_one()
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    queued = DBTaskResult.objects.filter(task_path=TASK)
    assert sorted(q.args_kwargs["kwargs"]["recipient_id"] for q in queued) == [people["alice"].pk, people["brook"].pk]

    worker = start_worker(worker_env(ses.url, STAFF_BASE_URL="https://staff.example.org"), tmp_path / "worker.log")
    try:
        message = mail_to(ses, "alice@example.org", f"endpoint {endpoint.pk} was disabled")
        mail_to(ses, "brook@example.org", f"endpoint {endpoint.pk} was disabled")
    finally:
        stop(worker)
    text = text_of(message)
    reason, last = ("410 Gone", "HTTP 410") if failure == "gone" else ("no successful delivery for 3 days", "HTTP 500")
    assert reason in text and f"Last status: {last}" in text and "CRM sync" in text
    assert f"https://staff.example.org/admin/api/endpoint/{endpoint.pk}/change/" in text
    assert receiver.url() in text and "receiver-secret-in-query" not in text
    assert "grace" not in text.lower() and "Hopper" not in text
    mails = sent_mail(ses.url)
    assert recipients(mails) == ["alice@example.org", "brook@example.org"]  # not carol (no factor), dan, erin


def test_a_rolled_back_disable_queues_no_email_and_a_second_failure_no_second_one(receiver):
    _people()
    endpoint, signup = _endpoint_and_event(receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        delivery._disabled(endpoint.pk, delivery.GONE, "HTTP 410", timezone.now())
        raise RuntimeError("the disabling transaction rolls back")
    assert not DBTaskResult.objects.filter(task_path=TASK).exists()
    Event.objects.create(type=Event.CONFIRMED, signup_id=signup.pk)
    delivery.fan_out("default")
    first, second = delivery.claim("default"), delivery.claim("default")  # two threads, both in flight
    receiver.replies = [(410, {}, 0.0), (410, {}, 0.0)]
    delivery.deliver(first, "default")
    delivery.deliver(second, "default")  # the endpoint is already disabled: no second email
    assert DBTaskResult.objects.filter(task_path=TASK).count() == 2  # alice and brook, once each
