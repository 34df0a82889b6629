"""Failure drills against the real app under gunicorn, on the real primary, replica and Redis."""

import logging
import threading
import time

import pytest

from ops.health import READY_CACHE_SECONDS
from tests.helpers import Browser, ready_detail
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

PERSON = {"consent": "on", "full_name": "Katherine Johnson", "email": "kj@example.com", "country": "US"}


@pytest.fixture
def stopped_redis(redis_server, live_db):
    redis_server.stop()
    yield redis_server
    redis_server.start()


@pytest.fixture
def stopped_primary(pg, live_db):
    pg.primary.stop("immediate")
    yield pg
    pg.primary.start()
    pg.wait_for_replica(timeout=30)


def test_twenty_threads_posting_the_same_email_make_exactly_one_row(app_server):
    browsers = [Browser(app_server.url) for _ in range(20)]
    tokens = [b.csrf_token() for b in browsers]
    barrier, replies = threading.Barrier(20), [None] * 20

    def post(i):
        barrier.wait()
        replies[i] = browsers[i].post_form("/signup/", {**PERSON, "full_name": f"Racer {i}"}, token=tokens[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in replies] == [200] * 20  # each followed its redirect to the thank-you page
    assert all(r.url.endswith("/signup/thanks/") for r in replies)
    assert Signup.objects.using("default").filter(email__iexact=PERSON["email"]).count() == 1
    winner = Signup.objects.using("default").get().full_name
    # exactly one person sees the stored record; everyone sees the name they typed
    assert all(f"Thank you, Racer {i}</h1>" in r.body for i, r in enumerate(replies))
    assert sum(f"Thank you, {winner}</h1>" in r.body for r in replies) == 1


def test_redis_down_signups_still_succeed_and_ready_reports_it(app_server, stopped_redis):
    reply = Browser(app_server.url).post_form("/signup/", PERSON)
    assert reply.status == 200 and "Thank you, Katherine Johnson" in reply.body
    assert Signup.objects.using("default").filter(email="kj@example.com").exists()
    assert Browser(app_server.url).get("/").status == 200
    time.sleep(READY_CACHE_SECONDS)  # /ready reuses a result for this long in each process
    assert Browser(app_server.url).get("/ready").status == 200
    doc = ready_detail(app_server.url)
    assert doc["status"] == "degraded"
    assert doc["checks"]["redis"]["status"] == "down" and doc["checks"]["default"]["status"] == "up"


def test_primary_down_ready_is_503_signup_is_a_friendly_503_health_stays_200(app_server, stopped_primary):
    browser = Browser(app_server.url)
    form = browser.get("/signup/")  # nobody is offered a form that cannot be saved
    assert form.status == 503 and "We cannot take signups just now" in form.body and form.headers["Retry-After"]
    assert "Traceback" not in form.body and "<form" in form.body
    token = browser.csrf_token()
    time.sleep(READY_CACHE_SECONDS)  # /ready reuses a result for this long in each process
    assert browser.get("/ready").status == 503
    assert ready_detail(app_server.url)["checks"]["default"]["status"] == "down"
    reply = browser.post_form("/signup/", PERSON, token=token)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "30"
    assert "nothing was stored" in reply.body and 'value="Katherine Johnson"' in reply.body
    assert "Traceback" not in reply.body and "OperationalError" not in reply.body
    assert browser.get("/health").status == 200


def test_signups_work_again_once_the_primary_is_back(app_server, pg):
    pg.primary.stop("immediate")
    pg.primary.start()
    assert Browser(app_server.url).get("/signup/").status == 200  # the workers' dead connections are replaced
    reply = Browser(app_server.url).post_form("/signup/", PERSON)
    assert reply.status == 200 and "Thank you, Katherine Johnson" in reply.body


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_alb_health_check_with_a_private_ip_host_is_answered(app_server, path):
    reply = Browser(app_server.url, headers={"Host": "10.0.12.34", "User-Agent": "ELB-HealthChecker/2.0"}).get(path)
    assert reply.status == 200


def test_other_paths_still_refuse_an_unknown_host(app_server):
    assert Browser(app_server.url, headers={"Host": "10.0.12.34"}).get("/").status == 400


def test_a_redis_outage_is_logged_not_silent(client, stopped_redis, caplog):
    with caplog.at_level(logging.WARNING, logger="project.cache"):
        response = client.post("/signup/", PERSON)
    assert response.status_code == 302
    assert Signup.objects.using("default").filter(email="kj@example.com").exists()
    assert any(r.name == "project.cache" and r.exc_info for r in caplog.records)
