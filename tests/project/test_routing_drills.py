"""Routing drills through gunicorn: a replica killed under load, and two app instances behind one ALB."""

import shutil
import threading
import time

import pytest

from devenv.servers import LOCAL_READY_TOKEN, AppServer
from project.db.monitor import PRIMARY_SQL, lsn_to_int
from tests.conftest import SERVICES
from tests.helpers import Browser, ready_detail
from tests.project.clusters import destroy_cluster, make_cluster
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

RETRY_SECONDS = 2.0
CHECK_INTERVAL = 0.2
ROUTING_ENV = {"REPLICA_CHECK_INTERVAL": str(CHECK_INTERVAL), "REPLICA_RETRY_SECONDS": str(RETRY_SECONDS),
               "REPLICA_MAX_LAG": "60", "READY_TOKEN": LOCAL_READY_TOKEN}  # fmt: skip


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
    reply = browser.post_form("/signup/", {"consent": "on", "full_name": "Mary Winston", "email": email})
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
    assert (
        browser.post_form("/signup/", {"consent": "on", "full_name": "Annie Easley", "email": "ae@example.com"}).status
        == 200
    )
    # The same browser, now load-balanced to the other instance: it carries its WAL position cookie.
    browser.base_url = second_app.url
    reply = browser.get("/signup/thanks/")
    assert reply.status == 200 and "Thank you, Annie Easley" in reply.body
    # Without that cookie the other instance reads the replica, which does not have the row yet, then the
    # primary (a miss is read again there, so a lagging replica cannot tell new addresses from known ones).
    stranger = Browser(second_app.url)
    for cookie in browser.jar:
        if cookie.name == "signup_thanks":
            stranger.jar.set_cookie(cookie)
    assert not Signup.objects.using("replica1").filter(email="ae@example.com").exists()
    reply = stranger.get("/signup/thanks/")
    assert reply.status == 200 and "Thank you, Annie Easley" in reply.body


@pytest.fixture
def promoted():
    """Primary P with standbys A and B; B streams WAL that A never gets; P stops and A is promoted (timeline 2).

    B is left on timeline 1 at a higher LSN than A: its positions compare as "ahead" of every write on A.
    """
    pg, env = make_cluster(replicas=2)
    a, b = pg.standbys
    try:
        a.stop()
        pg.admin_sql("CREATE TABLE IF NOT EXISTS lost_on_failover (id int)", "SELECT pg_switch_wal()")
        pg.wait_for_replica(standbys=[b])
        pg.primary.stop()
        a.start()
        a.promote()
        yield pg, env
    finally:
        destroy_cluster(pg)


def _position(pg, server) -> tuple[int, int]:
    """(timeline, LSN) of a primary, as the router samples it."""
    lsn, timeline = pg.admin_sql(PRIMARY_SQL, server=server)[0]
    return timeline, lsn_to_int(lsn)


def test_after_a_promotion_a_sibling_on_the_old_timeline_serves_nobody_until_it_follows_the_new_one(promoted):
    pg, env = promoted
    a, b = pg.standbys
    checkpoint_tl = pg.admin_sql("SELECT timeline_id FROM pg_control_checkpoint()", server=a)[0][0]
    print(f"right after promotion: pg_walfile_name says timeline {_position(pg, a)[0]}, "
          f"pg_control_checkpoint() still says {checkpoint_tl}")  # fmt: skip
    app = AppServer(env={**env, **ROUTING_ENV, "DATABASE_URL": pg.url(a), "DATABASE_REPLICA_URLS": pg.url(b),
                         "READY_TOKEN": LOCAL_READY_TOKEN}, workers=1, threads=4)  # fmt: skip
    app.start()
    try:
        writer = Browser(app.url)
        assert (
            writer.post_form(
                "/signup/", {"consent": "on", "full_name": "Katherine Johnson", "email": "kj@example.com"}
            ).status
            == 200
        )
        timeline, written = _position(pg, a)
        (b_replay,) = pg.admin_sql("SELECT pg_last_wal_replay_lsn()::text", server=b)[0]
        assert timeline == 2 and lsn_to_int(b_replay) > written  # by LSN alone, B "has" this write
        routing = _routing(app)
        assert routing["replicas"]["replica1"]["reason"] == "timeline"
        assert routing["replicas"]["replica1"]["timeline"] == 1
        for _ in range(10):  # the writer reads its row back: never from B, which lacks it
            reply = writer.get("/signup/thanks/")
            assert reply.status == 200 and "Thank you, Katherine Johnson" in reply.body
        reads_on_b = _routing(app)["counters"]["reads"].get("replica1", 0)
        assert reads_on_b == 0
        # B re-cloned from the new primary follows timeline 2: it serves again, the writer included.
        b.stop()
        shutil.rmtree(b.datadir)
        pg.add_standby(b, source=a)
        _wait_until_serving(app, timeout=20)
        assert _routing(app)["replicas"]["replica1"]["timeline"] == 2
        reply = writer.get("/signup/thanks/")
        assert reply.status == 200 and "Thank you, Katherine Johnson" in reply.body
        assert _routing(app)["counters"]["reads"].get("replica1", 0) > reads_on_b
    finally:
        app.stop()
