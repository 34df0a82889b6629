"""Staff-only middleware (sessions, auth, messages, the login lockout) runs on staff pages only."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.mark.parametrize("path", ["/", "/signup/", "/privacy/", "/my-data/"])
def test_public_pages_run_without_session_or_user(client, path, settings):
    response = client.get(path)
    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "user")
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_a_public_post_keeps_csrf_protection():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/signup/", {"consent": "on", "full_name": "Ada", "email": "ada@example.com"}).status_code == 403


@pytest.mark.parametrize("path", ["/admin/login/", "/ops/"])
def test_staff_pages_get_the_session_and_user(client, path):
    request = client.get(path).wsgi_request
    assert hasattr(request, "session") and request.user.is_anonymous


def test_staff_login_works_through_the_staff_chain(django_user_model):
    django_user_model.objects.create_user("desk", password="a-long-test-password", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    token = page.context["csrf_token"]
    form = {"username": "desk", "password": "a-long-test-password", "csrfmiddlewaretoken": str(token)}
    reply = client.post("/admin/login/?next=/admin/", form, REMOTE_ADDR="203.0.113.9")
    assert reply.status_code == 302 and reply["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_staff_middleware_list_without_sessions_fails_the_system_check(settings):
    settings.STAFF_MIDDLEWARE = [m for m in settings.STAFF_MIDDLEWARE if "sessions" not in m]
    with pytest.raises(SystemCheckError, match=r"project\.E001"):
        call_command("check")


# --- a database error inside the staff-only middleware -----------------------------------------------------
class RaisingMiddleware:
    """A staff-only middleware whose database goes away (as a session read on a frozen replica does)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import OperationalError

        from project.db.bounds import DatabaseDeadline

        # What Django's cursor makes of the deadline: its own OperationalError, the driver's as the cause.
        raise OperationalError("database replica1 did not answer within 5 s") from DatabaseDeadline()


def test_a_database_error_in_the_staff_middleware_answers_the_friendly_503_not_a_500(settings):
    settings.STAFF_MIDDLEWARE = [*settings.STAFF_MIDDLEWARE, "tests.project.test_staff_middleware.RaisingMiddleware"]
    client = Client(raise_request_exception=False)
    for path in ["/admin/", "/admin/login/", "/ops/"]:
        response = client.get(path)
        assert response.status_code == 503, path
        assert response["Retry-After"] and "try again" in response.content.decode().lower()
    assert client.get("/signup/").status_code == 200  # public pages never run that chain


def test_other_errors_in_the_staff_middleware_keep_djangos_answers(settings):
    settings.STAFF_MIDDLEWARE = [*settings.STAFF_MIDDLEWARE, "tests.project.test_staff_middleware.DeniedMiddleware"]
    assert Client().get("/admin/login/").status_code == 403


class DeniedMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied


def test_sessions_are_read_on_the_primary():
    from django.contrib.sessions.models import Session
    from django.db import router

    assert router.db_for_read(Session) == "default"


# --- a frozen replica under a signed-in staff session whose cached copy is gone -----------------------------
@pytest.fixture(scope="module")
def cluster(django_db_setup):
    from tests.project.clusters import destroy_cluster, make_cluster

    pg, env = make_cluster(replicas=1)
    yield pg, env
    destroy_cluster(pg)


def _forget_cached_sessions() -> int:
    """Delete every session's cached copy in Redis (as a restart or an eviction does); return how many."""
    import redis

    from tests.conftest import SERVICES

    client = redis.Redis.from_url(SERVICES.redis.url)
    keys = list(client.scan_iter(match="*django.contrib.sessions.cache*", count=1000))
    return client.delete(*keys) if keys else 0


@pytest.mark.slow
def test_a_frozen_replica_gives_a_staff_session_without_its_cached_copy_no_5xx(cluster):
    import statistics
    import threading
    import time

    from devenv.servers import LOCAL_READY_TOKEN, AppServer
    from tests.helpers import Browser, ready_detail
    from tests.project.clusters import manage

    pg, env = cluster
    fast = {"REPLICA_CHECK_INTERVAL": "0.2", "REPLICA_RETRY_SECONDS": "1", "REPLICA_MAX_LAG": "60",
            "READY_TOKEN": LOCAL_READY_TOKEN}  # fmt: skip
    create = (
        "from django.contrib.auth.models import User; User.objects.create_superuser('desk', '', 'a-long-test-password')"
    )
    manage(env, "shell", "-c", create)
    pg.wait_for_replica()
    app = AppServer(env={**env, **fast}, workers=1, threads=4)
    app.start()
    try:
        staff = Browser(app.url)
        form = {"username": "desk", "password": "a-long-test-password", "next": "/admin/"}
        signed_in = staff.post_form("/admin/login/", form)
        assert signed_in.status == 200 and signed_in.url.endswith("/admin/")
        staff.jar.clear(domain="127.0.0.1", path="/", name="db_position")  # its reads may go to the replica
        deadline = time.monotonic() + 10
        while not ready_detail(app.url)["routing"]["replicas"]["replica1"]["serving"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        before = ready_detail(app.url)["routing"]["counters"]["reads"].get("replica1", 0)
        assert _forget_cached_sessions() >= 1
        assert staff.get("/admin/users/signup/").status == 200
        assert ready_detail(app.url)["routing"]["counters"]["reads"].get("replica1", 0) > before  # the replica serves
        replies: list[tuple[int, float]] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                _forget_cached_sessions()  # every request must read the session from the database
                started = time.monotonic()
                reply = staff.get("/admin/users/signup/")
                ok = reply.status == 200 and "Select signup to view" in reply.body
                replies.append((200 if ok else reply.status, time.monotonic() - started))

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        pg.replica.freeze()
        try:
            time.sleep(12)
        finally:
            stop.set()
            for t in threads:
                t.join()
            pg.replica.thaw()
        waits = sorted(took for _, took in replies)
        bad = [status for status, _ in replies if status != 200]
        print(f"\nfrozen replica, staff session read from the database each time: {len(replies)} admin pages, "
              f"{len(bad)} not 200 {bad[:10]}, p50 {statistics.median(waits):.3f} s, "
              f"max {waits[-1]:.2f} s")  # fmt: skip
        assert len(replies) >= 20 and bad == []
        assert waits[-1] < 10
    finally:
        app.stop()
