"""Routing drills through gunicorn: a replica killed under load, and two app instances behind one ALB."""

import threading
import time

import pytest

from devenv.servers import AppServer
from tests.conftest import SERVICES
from tests.helpers import Browser, ready_detail

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

RETRY_SECONDS = 2.0
CHECK_INTERVAL = 0.2
ROUTING_ENV = {"REPLICA_CHECK_INTERVAL": str(CHECK_INTERVAL), "REPLICA_RETRY_SECONDS": str(RETRY_SECONDS),
               "REPLICA_MAX_LAG": "60"}  # fmt: skip


@pytest.fixture(scope="module")
def routed_app(django_db_setup):
    """One worker with ten threads, so /ready's per-process counters see every request."""
    server = AppServer(env={**SERVICES.environ(), **ROUTING_ENV}, workers=1, threads=10)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second_app(django_db_setup):
    server = AppServer(env={**SERVICES.environ(), **ROUTING_ENV}, workers=1, threads=4)
    server.start()
    yield server
    server.stop()


def _routing(app) -> dict:
    return ready_detail(app.url)["routing"]


def _replica_reads(app) -> int:
    return _routing(app)["counters"]["reads"].get("replica1", 0)


def _signed_up_browser(app, pg, email: str) -> Browser:
    browser = Browser(app.url)
    reply = browser.post_form("/signup/", {"full_name": "Mary Winston", "email": email})
    assert reply.status == 200
    pg.wait_for_replica()
    return browser


def _wait_until_serving(app, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _routing(app)["replicas"]["replica1"]["serving"]:
            return
        time.sleep(CHECK_INTERVAL)
    raise AssertionError(f"replica1 not serving after {timeout}s: {_routing(app)['replicas']}")


def test_replica_killed_under_load_fails_no_request_and_is_used_again_after_restart(routed_app, pg):
    browser = _signed_up_browser(routed_app, pg, "mw@example.com")
    browser.jar.clear(domain="127.0.0.1", path="/", name="db_position")  # only the thank-you cookie stays
    _wait_until_serving(routed_app)
    before = _replica_reads(routed_app)
    assert browser.get("/signup/thanks/").status == 200
    assert _replica_reads(routed_app) > before  # reads really go to the replica before the kill

    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        for _ in range(30):
            reply = browser.get("/signup/thanks/")
            with lock:
                statuses.append(reply.status)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    pg.replica.stop("immediate")
    for t in threads:
        t.join()
    try:
        assert len(statuses) == 300
        assert [s for s in statuses if s != 200] == []
        routing = _routing(routed_app)
        assert routing["replicas"]["replica1"]["breaker"] in {"open", "half-open"}
        assert routing["counters"]["marked_down"]["replica1"] >= 1
    finally:
        pg.replica.start()
    pg.wait_for_replica()
    restarted, reads = time.monotonic(), _replica_reads(routed_app)
    while _replica_reads(routed_app) == reads and time.monotonic() - restarted < 3 * RETRY_SECONDS:
        assert browser.get("/signup/thanks/").status == 200
        time.sleep(0.05)
    back_after = time.monotonic() - restarted
    print(f"reads returned to the replica {back_after:.2f}s after restart (retry interval {RETRY_SECONDS}s)")
    assert _replica_reads(routed_app) > reads
    assert back_after <= RETRY_SECONDS + 2 * CHECK_INTERVAL + 0.5


def test_write_through_one_instance_is_read_back_through_another_while_replay_is_paused(
    routed_app, second_app, paused_replica
):
    _wait_until_serving(second_app)
    browser = Browser(routed_app.url)
    assert browser.post_form("/signup/", {"full_name": "Annie Easley", "email": "ae@example.com"}).status == 200
    # The same browser, now load-balanced to the other instance: it carries its WAL position cookie.
    browser.base_url = second_app.url
    reply = browser.get("/signup/thanks/")
    assert reply.status == 200 and "Thank you, Annie Easley" in reply.body
    # Without that cookie the other instance reads the replica, which does not have the row yet.
    stranger = Browser(second_app.url)
    for cookie in browser.jar:
        if cookie.name == "signup_thanks":
            stranger.jar.set_cookie(cookie)
    assert stranger.get("/signup/thanks/").url.endswith("/signup/")
