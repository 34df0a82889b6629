"""Double opt-in: the confirmation email, its link, the confirm page and the ledger."""

import pytest
from django.core import mail
from django.core.cache import cache

from tests.helpers import shown_count
from tests.users.mail import link, run_queue, sign_up
from users import tasks, tokens
from users.models import ConsentEvent, Signup
from users.stats import COUNT_KEY
from users.tasks import email_tasks

pytestmark = pytest.mark.usefixtures("live_db")


def _row() -> Signup:
    return Signup.objects.using("default").get()


def test_signup_queues_the_confirmation_in_its_transaction_and_the_worker_sends_it(client):
    assert sign_up(client).status_code == 302
    signup = _row()
    assert list(email_tasks().values_list("status", "args_kwargs")) == [
        ("READY", {"args": [], "kwargs": {"signup_id": signup.pk, "kind": "confirm"}})
    ]
    assert [e.kind for e in signup.events.all()] == ["given"]
    given = signup.events.get()
    assert (given.ip, given.wording_version) == ("198.51.100.23", signup.consent_version)
    assert mail.outbox == []  # nothing is sent by the web request itself
    assert run_queue() == {"done": 1, "retried": 0, "failed": 0}
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"] and "confirm" in message.subject.lower()
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")
    assert message.alternatives[0][1] == "text/html" and "Confirm my address" in message.alternatives[0][0]
    assert list(email_tasks().values_list("status", flat=True)) == ["SUCCESSFUL"]
    assert run_queue()["done"] == 0  # sent once, never again


def test_get_on_the_confirm_link_changes_nothing_and_post_confirms_with_time_and_ip(client):
    sign_up(client)
    run_queue()
    path = link(mail.outbox[0], "/signup/confirm/")
    page = client.get(path, REMOTE_ADDR="203.0.113.9", follow=True)  # exchanged for a cookie, then the clean URL
    assert page.status_code == 200 and 'data-testid="confirm"' in page.content.decode()
    assert _row().confirmed_at is None and _row().events.count() == 1  # mail scanners open links
    response = client.post(path, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302 and response["Location"].startswith("/my-data/")
    row = _row()
    assert row.confirmed_at is not None and row.confirmed_ip == "203.0.113.9"
    confirmed = row.events.get(kind=ConsentEvent.CONFIRMED)
    assert confirmed.ip == "203.0.113.9" and confirmed.wording_version == row.consent_version


def test_a_used_link_answers_409_and_offers_a_new_one(client):
    sign_up(client)
    run_queue()
    path = link(mail.outbox[0], "/signup/confirm/")
    client.post(path)
    for method in (client.get, client.post):
        again = method(path)
        assert again.status_code == 409
        assert "/my-data/" in again.content.decode()  # "email me a new link"
    assert _row().events.filter(kind=ConsentEvent.CONFIRMED).count() == 1


def test_expired_link_answers_410_and_changes_nothing(client, settings):
    sign_up(client)
    run_queue()
    path = link(mail.outbox[0], "/signup/confirm/")
    settings.CONFIRM_TTL = 60
    token = tokens.make(tokens.CONFIRM, _row().pk, _row().email)
    import time as real_time
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=real_time.time() + 61):
        assert client.get(path).status_code == 410
        assert client.post(f"/signup/confirm/{token}/").status_code == 410
    assert _row().confirmed_at is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: "x" + t,  # payload changed
        lambda t: t.split(":")[0],  # no signature
        lambda t: "%00%ff" + t,  # junk bytes
        lambda t: "a" * 4000,  # long garbage
    ],
)
def test_tampered_links_answer_400_never_500(client, mangle):
    sign_up(client)
    run_queue()
    token = link(mail.outbox[0], "/signup/confirm/").split("/")[3]
    bad = mangle(token)
    assert client.get(f"/signup/confirm/{bad}/").status_code in {400, 404}
    assert client.post(f"/signup/confirm/{bad}/").status_code in {400, 404}
    assert _row().confirmed_at is None


def test_a_token_for_one_purpose_opens_nothing_else(client):
    sign_up(client)
    row = _row()
    manage = tokens.make(tokens.MANAGE, row.pk, row.email)
    assert client.post(f"/signup/confirm/{manage}/").status_code == 400
    confirm = tokens.make(tokens.CONFIRM, row.pk, row.email)
    assert client.get(f"/my-data/{confirm}/").status_code == 400
    assert _row().confirmed_at is None


def test_the_landing_count_counts_confirmed_people_only(client, pg):
    sign_up(client)
    sign_up(client.__class__(), email="bob@example.com", full_name="Bob")
    run_queue()
    assert shown_count(client) == 0
    client.post(link(mail.outbox[0], "/signup/confirm/"))
    assert cache.get(COUNT_KEY) is None  # the confirmation's commit emptied it
    pg.wait_for_replica()
    assert shown_count(client) == 1


def test_no_email_to_a_blocked_address(client):
    sign_up(client)
    Signup.objects.using("default").update(email_blocked_at="2026-01-01T00:00:00Z", email_blocked_reason="bounce")
    assert run_queue()["done"] == 1
    assert mail.outbox == []
    assert email_tasks().get().return_value == "skipped: address blocked"


def test_signup_without_consent_is_refused_and_stores_nothing(client):
    response = sign_up(client, consent=None)
    assert response.status_code == 400
    assert "Please tick the box" in response.content.decode()
    assert not Signup.objects.using("default").exists()
    assert run_queue()["done"] == 0 and mail.outbox == []


def test_plain_http_links_in_emails_are_a_system_check_warning(settings):
    from users.checks import check_email_links

    settings.HTTPS, settings.PUBLIC_BASE_URL, settings.EMAIL_PROVIDER = True, "http://127.0.0.1:8000", "ses"
    settings.EMAIL_FROM = "Signups <no-reply@example.org>"
    assert [w.id for w in check_email_links(None)] == ["users.W001", "users.W002"]
    settings.PUBLIC_BASE_URL, settings.EMAIL_FROM = "https://signup.example.net", "news@signup.example.net"
    assert check_email_links(None) == []


def test_a_signup_is_one_statement_holding_the_row_its_event_and_its_email(client):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["default"]) as queries:
        assert sign_up(client).status_code == 302
    writes = [q["sql"] for q in queries if "INSERT" in q["sql"].upper()]
    assert len(writes) == 1
    (sql,) = writes
    for table in ("users_signup", "users_consentevent", tasks.table()):
        assert f"INSERT INTO {table}" in sql
    assert "ON CONFLICT DO NOTHING" in sql


def test_the_consent_ledger_is_append_only(client):
    sign_up(client)
    event = _row().events.get()
    event.ip = "192.0.2.1"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    assert _row().events.get().ip == "198.51.100.23"


def test_the_orm_path_of_local_mode_stores_and_queues_the_same():
    from datetime import timedelta

    from users.signup_store import _orm as _signup_orm

    def store(name: str) -> bool:
        signup = Signup(full_name=name, email="Sq@example.com", consent=True, consent_version="v1")
        return _signup_orm(signup, ip="192.0.2.7", notice_after=timedelta(hours=1), using="default")

    assert [store("A"), store("B"), store("C")] == [True, False, False]
    row = _row()
    assert row.full_name == "A" and [(e.kind, e.ip) for e in row.events.all()] == [("given", "192.0.2.7")]
    kinds = [t.args_kwargs["kwargs"]["kind"] for t in email_tasks().order_by("enqueued_at")]
    assert kinds == ["confirm", "already"]
