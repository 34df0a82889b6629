import pytest
from django.db import connections, router, transaction

from project.db import state
from project.db.router import PrimaryReplicaRouter
from users.models import Signup


@pytest.fixture
def request_scope():
    token = state.begin_request()
    yield
    state.end_request(token)


def test_reads_go_to_a_replica_when_one_is_configured(pg, request_scope):
    assert router.db_for_read(Signup) == "replica1"


def test_reads_inside_atomic_on_the_primary_use_the_primary(pg, live_db, request_scope):
    with transaction.atomic():
        assert router.db_for_read(Signup) == "default"
    assert router.db_for_read(Signup) == "replica1"


def test_reads_after_a_write_in_the_same_request_use_the_primary(pg, live_db, request_scope):
    assert router.db_for_read(Signup) == "replica1"
    Signup.objects.create(full_name="Grace Hopper", email="grace@example.com")
    assert router.db_for_read(Signup) == "default"
    # a new request starts clean
    token = state.begin_request()
    assert router.db_for_read(Signup) == "replica1"
    state.end_request(token)


def test_use_primary_as_context_manager_and_decorator(pg, request_scope):
    with state.use_primary():
        assert router.db_for_read(Signup) == "default"
    assert router.db_for_read(Signup) == "replica1"

    @state.use_primary()
    def view():
        return router.db_for_read(Signup)

    assert view() == "default"


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
