"""The replica router on real streaming replication: read-your-writes by WAL position, lag, failover."""

import time

import pytest
from django.db import connections, router, transaction
from django.test import Client

from project.db import counters, state
from project.db.monitor import monitor
from project.db.router import PrimaryReplicaRouter
from users.models import Signup

PERSON = {"full_name": "Dorothy Vaughan", "email": "dv@example.com"}
FORM = {**PERSON, "consent": "on"}  # what the signup form posts


@pytest.fixture
def routing(pg, live_db):
    """A sampled monitor and fresh counters; the replica caught up and eligible."""
    pg.wait_for_replica()
    monitor.reset()
    counters.reset()
    monitor.refresh()
    yield monitor
    monitor.reset()


@pytest.fixture
def request_scope():
    token = state.begin_request()
    yield state.current()
    state.end_request(token)


def _served_by(client: Client, path: str = "/signup/thanks/") -> tuple[int, str]:
    """GET a page and return (status, the alias its reads went to)."""
    before = counters.snapshot()["reads"]
    response = client.get(path)
    after = counters.snapshot()["reads"]
    used = [alias for alias in after if after[alias] > before.get(alias, 0)]
    assert len(used) == 1, f"expected one alias, saw {used}"
    return response.status_code, used[0]


@pytest.fixture
def reader(routing, pg):
    """A factory of fresh browsers that each re-read one signup on the thank-you page (a real DB read)."""
    author = Client()
    author.post("/signup/", {**FORM, "email": "reader@example.com"})
    pg.wait_for_replica()
    monitor.refresh()
    cookie = author.cookies["signup_thanks"].value

    def make() -> Client:
        browser = Client()
        browser.cookies["signup_thanks"] = cookie
        return browser

    return make


def test_reads_go_to_a_replica_once_it_is_sampled(routing, request_scope):
    assert router.db_for_read(Signup) == "replica1"


def test_before_the_first_sample_reads_use_the_primary(pg, live_db, request_scope):
    monitor.reset()
    assert router.db_for_read(Signup) == "default"


def test_reads_inside_atomic_on_the_primary_use_the_primary(routing, request_scope):
    with transaction.atomic():
        assert router.db_for_read(Signup) == "default"
    assert router.db_for_read(Signup) == "replica1"


def test_reads_after_a_write_in_the_same_request_use_the_primary(routing, request_scope):
    assert router.db_for_read(Signup) == "replica1"
    Signup.objects.create(**PERSON)
    assert router.db_for_read(Signup) == "default"


def test_use_primary_as_context_manager_and_decorator(routing, request_scope):
    with state.use_primary():
        assert router.db_for_read(Signup) == "default"
    assert router.db_for_read(Signup) == "replica1"

    @state.use_primary()
    def view():
        return router.db_for_read(Signup)

    assert view() == "default"
    assert router.db_for_read(Signup) == "replica1"


def test_writes_and_migrations_only_touch_the_primary(pg):
    r = PrimaryReplicaRouter()
    assert r.db_for_write(Signup) == "default"
    assert r.allow_migrate("default", "users")
    assert not r.allow_migrate("replica1", "users")


def test_the_replica_alias_really_is_a_standby(pg, live_db):
    with connections["replica1"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True
    connections["replica1"].close()


def test_own_write_is_read_from_the_primary_until_the_replica_replays_it(routing, paused_replica):
    writer, other = Client(), Client()
    assert writer.post("/signup/", FORM).status_code == 302
    assert "db_position" in writer.cookies  # the primary's WAL position after the write
    monitor.refresh()
    # The replica does not have the row; the writer is served by the primary and sees it.
    assert not Signup.objects.using("replica1").filter(email=PERSON["email"]).exists()
    status, alias = _served_by(writer)
    assert (status, alias) == (200, "default")
    assert "Dorothy Vaughan" in writer.get("/signup/thanks/").content.decode()
    # Someone else, with no write of their own to wait for, keeps reading from the replica.
    other.cookies["signup_thanks"] = writer.cookies["signup_thanks"].value
    before = counters.snapshot()["reads"]
    assert other.get("/signup/thanks/").status_code == 200
    after = counters.snapshot()["reads"]
    # The replica is asked first; its miss (not replayed yet) is read again on the primary: a replica behind
    # somebody else's write must not tell a new address from a known one (users.views.thanks).
    assert after["replica1"] > before.get("replica1", 0) and after["default"] > before.get("default", 0)
    assert counters.snapshot()["pins"] >= 1
    assert counters.snapshot()["caught_up"] == 0  # asked the paused replica: not there yet
    # Once replay resumes and the replica has the write, the writer goes back to the replica.
    paused_replica.resume_replay()
    paused_replica.wait_for_replica()
    monitor.refresh()
    assert _served_by(writer) == (200, "replica1")


def test_a_writer_reads_the_replica_as_soon_as_it_has_replayed_without_waiting_for_a_sample(routing, pg):
    writer = Client()
    assert writer.post("/signup/", FORM).status_code == 302
    pg.wait_for_replica()  # replayed; the monitor's only sample is from before the write
    timeline, position = map(int, writer.cookies["db_position"].value.split(":")[0].split("/"))
    assert timeline == monitor.primary_timeline() == 1
    assert monitor.eligible("replica1", position, min_timeline=timeline) == "behind_client"
    status, alias = _served_by(writer)
    assert (status, alias) == (200, "replica1")  # one quick question to the replica instead of the primary
    assert "Dorothy Vaughan" in writer.get("/signup/thanks/").content.decode()
    assert counters.snapshot()["caught_up"] >= 1
    assert monitor.eligible("replica1", position, min_timeline=timeline) == ""  # the answer raised its position


def test_a_lagging_replica_serves_nobody_until_it_catches_up(reader, paused_replica, settings):
    settings.REPLICA_MAX_LAG = 0.5
    Signup.objects.create(**PERSON)  # WAL the paused replica will not replay
    monitor.refresh()
    time.sleep(0.7)
    monitor.refresh()
    described = monitor.describe()["replica1"]
    assert described["lag_seconds"] > 0.5 and described["lag_bytes"] > 0
    assert described["reason"] == "lagging"
    assert _served_by(reader())[1] == "default"
    assert counters.snapshot()["fallbacks"]["lagging"] >= 1
    settings.REPLICA_MAX_LAG = 60  # the same lag is now below the limit: it serves again
    assert monitor.eligible("replica1", 0) == ""
    settings.REPLICA_MAX_LAG = 0.5
    paused_replica.resume_replay()
    paused_replica.wait_for_replica()
    monitor.refresh()
    assert monitor.describe()["replica1"]["lag_seconds"] == 0
    assert _served_by(reader())[1] == "replica1"


def test_lag_in_bytes_limit(routing, paused_replica, settings):
    settings.REPLICA_MAX_LAG_BYTES = 1
    Signup.objects.create(**PERSON)
    monitor.refresh()
    assert monitor.describe()["replica1"]["reason"] == "lagging"


def test_a_dead_replica_is_marked_down_and_reads_fall_back(reader, pg, settings):
    settings.REPLICA_CHECK_INTERVAL = 0.1
    settings.REPLICA_RETRY_SECONDS = 0.5
    pg.replica.stop("immediate")
    try:
        monitor.refresh()
        described = monitor.describe()["replica1"]
        assert described["breaker"] == "open" and described["reason"] == "down"
        assert counters.snapshot()["marked_down"] == {"replica1": 1}
        assert _served_by(reader()) == (200, "default")
    finally:
        pg.replica.start()
    pg.wait_for_replica()
    deadline = time.monotonic() + 5
    while monitor.describe()["replica1"]["reason"] and time.monotonic() < deadline:
        time.sleep(0.1)
        monitor.refresh()  # the half-open probe once the back-off has passed
    assert monitor.describe()["replica1"]["breaker"] == "closed"
    assert _served_by(reader()) == (200, "replica1")


def test_a_get_that_fails_on_a_replica_is_retried_on_the_primary(reader, pg):
    browser = reader()
    assert _served_by(browser) == (200, "replica1")  # opens this thread's replica connection
    pg.replica.stop("immediate")  # dies between requests: the open connection breaks
    try:
        response = browser.get("/signup/thanks/")
        assert response.status_code == 200 and "Thank you, Dorothy Vaughan" in response.content.decode()
        assert counters.snapshot()["retries"] == 1
        assert monitor.describe()["replica1"]["breaker"] == "open"
    finally:
        pg.replica.start()
        pg.wait_for_replica()


def test_a_forged_position_cookie_is_ignored(reader):
    browser = reader()
    browser.cookies["db_position"] = "99999999999999"  # unsigned: would pin this browser to the primary
    assert _served_by(browser) == (200, "replica1")


def test_reads_spread_over_several_replicas_and_skip_one_that_is_down(routing, monkeypatch, request_scope):
    from project.db import router as router_module

    monkeypatch.setattr(router_module, "replica_aliases", lambda: ["replica1", "replica2"])
    monitor._statuses["replica2"] = monitor._statuses["replica1"]  # a second replica, just as caught up
    seen = set()
    for _ in range(200):
        state.current().read_alias = None  # a new request each time
        seen.add(router.db_for_read(Signup))
    assert seen == {"replica1", "replica2"}
    monitor.mark_down("replica1", "connection refused")
    for _ in range(50):
        state.current().read_alias = None
        assert router.db_for_read(Signup) == "replica2"
    monitor.mark_down("replica2", "connection refused")
    state.current().read_alias = None
    assert router.db_for_read(Signup) == "default"
    assert counters.snapshot()["fallbacks"]["down"] == 1


def test_replica_weights_share_the_reads(routing, monkeypatch, request_scope, settings):
    from project.db import router as router_module

    monkeypatch.setattr(router_module, "replica_aliases", lambda: ["replica1", "replica2"])
    monitor._statuses["replica2"] = monitor._statuses["replica1"]
    settings.REPLICA_WEIGHTS = {"replica1": 1, "replica2": 3}
    draws = []
    for _ in range(4000):
        state.current().read_alias = None
        draws.append(router.db_for_read(Signup))
    share = draws.count("replica2") / len(draws)
    assert 0.70 < share < 0.80, share  # 3 of 4 expected; ±0.05 is over 7 standard deviations
    monitor.mark_down("replica2", "connection refused")  # the heavier one down: all reads to the other
    state.current().read_alias = None
    assert router.db_for_read(Signup) == "replica1"


def test_showing_the_signup_form_pins_nobody_to_the_primary(routing):
    response = Client().get("/signup/")  # checks the primary is up, without counting as a write
    assert response.status_code == 200
    assert "db_position" not in response.cookies


@pytest.mark.urls("tests.project.retry_urls")
def test_a_get_failing_on_a_replica_while_its_template_renders_is_rendered_from_the_primary(reader, pg):
    browser = reader()
    assert _served_by(browser, "/test/lazy-list/") == (200, "replica1")  # opens this thread's replica connection
    pg.replica.stop("immediate")
    try:
        response = browser.get("/test/lazy-list/")  # the replica query runs in TemplateResponse.render()
        assert response.status_code == 200
        assert "<li>Dorothy Vaughan</li>" in response.content.decode()
        assert counters.snapshot()["retries"] == 1
        assert monitor.describe()["replica1"]["breaker"] == "open"
    finally:
        pg.replica.start()
        pg.wait_for_replica()


@pytest.mark.urls("tests.project.retry_urls")
def test_a_get_whose_primary_query_fails_marks_no_replica_down_and_is_not_retried(reader):
    browser = reader()
    response = browser.get("/test/primary-dies/")
    assert response.status_code == 503  # the friendly page: the primary failed, a retry there cannot help
    assert counters.snapshot()["retries"] == 0
    assert counters.snapshot()["marked_down"] == {}
    assert monitor.describe()["replica1"]["breaker"] == "closed"
