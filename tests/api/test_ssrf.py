"""The SSRF guard's DNS lookup has our own deadline (api/ssrf.py rule 5): a resolver that hangs costs a save,
an API call or a delivery attempt RESOLVE_SECONDS, not the resolver's own timeout."""

import json
import socket
import threading
import time

import pytest
from django.core.exceptions import ValidationError

from api import delivery, ssrf
from api.models import Attempt, Delivery, Endpoint, Event
from tests.api.test_api import BASE, make_key

pytestmark = pytest.mark.usefixtures("live_db")
HANG = 30.0  # how long the stand-in resolver hangs for hang.example (far past the deadline)


@pytest.fixture
def hanging_resolver(monkeypatch):
    """getaddrinfo hangs for hang.example (a resolver that never answers) and answers the rest as usual."""
    real, release = socket.getaddrinfo, threading.Event()

    def getaddrinfo(host, *args, **kwargs):
        if host == "hang.example":
            release.wait(HANG)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(ssrf, "RESOLVE_SECONDS", 0.5)
    yield
    release.set()  # let the abandoned lookup threads end


def _timed(fn):
    started = time.monotonic()
    try:
        fn()
    except Exception as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_a_hanging_lookup_is_refused_at_save_after_our_deadline(hanging_resolver):
    error, seconds = _timed(lambda: Endpoint(url="https://hang.example/hook").full_clean())
    assert isinstance(error, ValidationError) and "did not resolve within 0.5 s" in str(error)
    assert 0.4 < seconds < 5.0  # our deadline, not the resolver's HANG


def test_a_hanging_lookup_is_a_refused_attempt_at_delivery_and_a_422_at_the_api(hanging_resolver, client):
    Endpoint.objects.create(url="https://hang.example/hook")  # saved while its DNS still answered
    Event.objects.create(type=Event.CREATED, signup_id=1)
    started = time.monotonic()
    delivery.run_one()
    assert time.monotonic() - started < 5.0
    attempt = Attempt.objects.get()
    assert attempt.error.startswith("refused: host did not resolve within") and attempt.latency_ms < 5000
    assert Delivery.objects.get().status == "pending"  # tried again on the schedule
    headers = {"HTTP_AUTHORIZATION": f"Bearer {make_key(['webhooks:manage'])}"}
    started = time.monotonic()
    answer = client.post(BASE + "/webhooks/endpoints", json.dumps({"url": "https://hang.example/other"}),
                         content_type="application/json", **headers)  # fmt: skip
    assert answer.status_code == 422 and time.monotonic() - started < 5.0
    assert Endpoint.objects.count() == 1


def test_lookups_in_flight_are_capped_and_a_literal_needs_no_lookup(hanging_resolver, monkeypatch):
    monkeypatch.setattr(ssrf, "_in_flight", threading.BoundedSemaphore(2))
    monkeypatch.setattr(ssrf, "MAX_LOOKUPS", 2)
    monkeypatch.setattr(ssrf, "RESOLVE_SECONDS", 2.0)  # so that "at once" below is far from the deadline
    for _ in range(2):  # two lookups left hanging hold both places
        assert "did not resolve within" in str(_timed(lambda: ssrf.resolve("https://hang.example/"))[0])
    error, seconds = _timed(lambda: ssrf.resolve("https://hang.example/"))
    assert "lookups are already waiting" in str(error) and seconds < 1.0  # refused at once, no third thread
    assert ssrf.resolve("https://93.184.215.14/")[2] == ["93.184.215.14"]  # an IP literal: no lookup, no wait
