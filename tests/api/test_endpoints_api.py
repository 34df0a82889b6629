"""/api/v1/webhooks/endpoints (api/endpoints.py, scope webhooks:manage): endpoints managed as in the admin, the
secret shown once, rotation with both signatures, the delivery log and replay, audited, problems for errors."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import ApiAudit, Attempt, Delivery, Endpoint, Event
from api.runner import run_until_idle
from tests.api.receiver import Receiver
from tests.api.test_api import BASE, _problem, make_key
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")
MANAGE = ["webhooks:manage", "signups:read"]


@pytest.fixture
def call(client):
    def send(method: str, path: str, data=None, scopes=MANAGE):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {make_key(scopes)}"}
        if method in ("post", "patch"):
            return getattr(client, method)(BASE + "/webhooks" + path, json.dumps({} if data is None else data),
                                           content_type="application/json", **headers)  # fmt: skip
        return getattr(client, method)(BASE + "/webhooks" + path, data or {}, **headers)

    return send


def _created(call, receiver: Receiver, **fields) -> dict:
    response = call("post", "/endpoints", {"url": receiver.url(), "description": "CRM", **fields})
    assert response.status_code == 201, response.content
    body = response.json()
    receiver.secret = body["secret"]
    return body


def test_every_route_needs_the_webhooks_manage_scope(call):
    endpoint = Endpoint.objects.create(url="https://example.com/hook")
    paths = [("get", "/endpoints"), ("post", "/endpoints"), ("get", f"/endpoints/{endpoint.pk}"),
             ("patch", f"/endpoints/{endpoint.pk}"), ("delete", f"/endpoints/{endpoint.pk}"),
             ("post", f"/endpoints/{endpoint.pk}/rotate-secret"), ("get", f"/endpoints/{endpoint.pk}/deliveries"),
             ("get", f"/endpoints/{endpoint.pk}/deliveries/1"),
             ("post", f"/endpoints/{endpoint.pk}/deliveries/1/replay")]  # fmt: skip
    for method, path in paths:
        body = _problem(call(method, path, {"url": "https://example.com/x"}, scopes=["signups:read"]), 403)
        assert "webhooks:manage" in body["detail"]
    assert Endpoint.objects.get().url == "https://example.com/hook"


def test_the_secret_is_shown_at_creation_only_and_every_call_is_audited(call, receiver):
    created = _created(call, receiver, events=["signup.created", "signup.created", "signup.erased"])
    assert created["secret"].startswith("whsec_") and created["events"] == ["signup.created", "signup.erased"]
    listed = call("get", "/endpoints").json()["items"]
    one = call("get", f"/endpoints/{created['id']}").json()
    assert [e["id"] for e in listed] == [created["id"]] and one["url"] == receiver.url()
    shown = json.dumps(listed) + json.dumps(one)
    assert '"secret"' not in shown and "whsec_" not in shown  # no secret, old or new, in a list or a read
    assert list(ApiAudit.objects.order_by("id").values_list("action", "filters")) == [
        ("endpoint.create", {"id": created["id"]}),
        ("endpoints.list", {}),
        ("endpoint.read", {"id": created["id"]}),
    ]


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
                                 "https://[::1]/", "http://example.com/plain-http", "not a url"])  # fmt: skip
def test_the_ssrf_guard_refuses_inside_addresses_at_create_and_update(call, url):
    body = _problem(call("post", "/endpoints", {"url": url}), 422)
    assert body["errors"][0]["loc"] == ["body", "url"]
    assert not Endpoint.objects.exists()
    endpoint = Endpoint.objects.create(url="https://example.com/hook")
    _problem(call("patch", f"/endpoints/{endpoint.pk}", {"url": url}), 422)
    assert Endpoint.objects.get().url == "https://example.com/hook"


def test_granting_signups_read_needs_a_key_that_holds_it(call, receiver):
    body = _problem(call("post", "/endpoints", {"url": receiver.url(), "signups_read": True},
                         scopes=["webhooks:manage"]), 403)  # fmt: skip
    assert "signups:read" in body["detail"] and not Endpoint.objects.exists()
    created = _created(call, receiver, signups_read=True)
    assert created["signups_read"] and Endpoint.objects.get().full_payload


def test_update_changes_only_what_is_sent_and_enabling_gives_a_fresh_start(call, receiver):
    created = _created(call, receiver)
    Endpoint.objects.filter(pk=created["id"]).update(enabled=False, disabled_reason="the receiver answered 410 Gone",
                                                     failing_since=timezone.now() - timedelta(days=4))  # fmt: skip
    changed = call("patch", f"/endpoints/{created['id']}", {"enabled": True, "events": ["signup.confirmed"]}).json()
    assert changed["enabled"] and changed["disabled_reason"] == "" and changed["failing_since"] is None
    Endpoint.objects.filter(pk=created["id"]).update(failing_since=timezone.now() - timedelta(days=2))
    again = call("patch", f"/endpoints/{created['id']}", {"enabled": True}).json()
    assert again["failing_since"] is not None  # already enabled: its failing streak stands
    row = Endpoint.objects.get()
    assert row.event_types == ["signup.confirmed"] and row.description == "CRM" and row.url == receiver.url()
    _problem(call("patch", f"/endpoints/{created['id']}", {"description": None}), 422)
    _problem(call("patch", f"/endpoints/{created['id']}", {"description": "a\x00b"}), 422)
    _problem(call("patch", f"/endpoints/{created['id']}", {"description": "a\ud800b"}), 422)  # a lone surrogate
    _problem(call("patch", f"/endpoints/{created['id']}", {"events": ["signup.exploded"]}), 422)
    for body in ([None, None], [], 7, "text"):  # JSON, but not an object: refused, nothing changed
        assert call("patch", f"/endpoints/{created['id']}", body).status_code in (400, 422)
    assert Endpoint.objects.get().description == "CRM"
    _problem(call("patch", "/endpoints/987654", {"enabled": True}), 404)


def test_rotation_shows_the_new_secret_once_and_both_sign_during_the_overlap(call, receiver):
    created = _created(call, receiver)
    old = created["secret"]
    rotated = call("post", f"/endpoints/{created['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != old
    until = Endpoint.objects.get().previous_secret_until
    assert timedelta(hours=23) < until - timezone.now() <= timedelta(hours=24)
    signup = Signup.objects.create(full_name="Ada Lovelace", email="ada@example.com")
    Event.objects.create(type=Event.CREATED, signup_id=signup.pk)
    run_until_idle()
    assert len(receiver.received) == 1  # verified by standardwebhooks with the old secret
    receiver.secret = rotated["secret"]
    assert Delivery.objects.get().status == "succeeded"
    call("post", f"/endpoints/{created['id']}/deliveries/{Delivery.objects.get().pk}/replay")
    run_until_idle()
    assert len(receiver.received) == 2 and receiver.rejected == 0  # and with the new one
    assert len(receiver.received[1]["headers"]["webhook-signature"].split(" ")) == 2


def test_the_delivery_log_pages_shows_attempts_and_replays(call, receiver):
    created = _created(call, receiver)
    signup = Signup.objects.create(full_name="Ada Lovelace", email="ada@example.com")
    events = [Event.objects.create(type=Event.CREATED, signup_id=signup.pk) for _ in range(3)]
    receiver.replies = [(500, {}, 0.0)]
    run_until_idle()
    base = f"/endpoints/{created['id']}/deliveries"
    first = call("get", base, {"limit": 2}).json()
    assert [d["event_id"] for d in first["items"]] == [events[2].pk, events[1].pk] and first["next"] == events[1].pk
    rest = call("get", base, {"limit": 2, "before": first["next"]}).json()
    assert [d["event_id"] for d in rest["items"]] == [events[0].pk] and rest["next"] is None
    assert {d["status"] for d in first["items"] + rest["items"]} == {"succeeded"}
    retried = Delivery.objects.get(attempts=2)  # the one that met the 500
    detail = call("get", f"{base}/{retried.pk}").json()
    assert detail["attempts"] == 2 and [a["status_code"] for a in detail["attempt_log"]] == [200, 500]
    assert detail["attempt_log"][0]["response_excerpt"] == "ok" and detail["signup_id"] == signup.pk
    assert "ada@" not in json.dumps(detail)
    sent = [r["id"] for r in receiver.received].count(f"msg_{retried.event_id}")  # the 500 and the 200
    assert call("post", f"{base}/{retried.pk}/replay").status_code == 202
    run_until_idle()
    assert [r["id"] for r in receiver.received].count(f"msg_{retried.event_id}") == sent + 1 == 3
    Delivery.objects.filter(pk=retried.pk).update(status="running")
    _problem(call("post", f"{base}/{retried.pk}/replay"), 409)
    other = Endpoint.objects.create(url="https://example.com/other")
    _problem(call("get", f"/endpoints/{other.pk}/deliveries/{retried.pk}"), 404)  # not that endpoint's
    actions = set(ApiAudit.objects.values_list("action", flat=True))
    assert {"deliveries.list", "delivery.read", "delivery.replay"} <= actions


def test_delete_takes_the_deliveries_and_their_log_with_it(call, receiver):
    created = _created(call, receiver)
    Event.objects.create(type=Event.CREATED, signup_id=1)
    run_until_idle()
    assert Attempt.objects.count() == 1
    assert call("delete", f"/endpoints/{created['id']}").status_code == 204
    _problem(call("get", f"/endpoints/{created['id']}"), 404)
    assert not Delivery.objects.exists() and not Attempt.objects.exists()
    assert ApiAudit.objects.filter(action="endpoint.delete", filters={"id": created["id"]}).exists()
