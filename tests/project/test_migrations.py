"""Migrating on PostgreSQL: an interrupted concurrent index build is rebuilt; waits for locks are bounded."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from users.models import Signup

pytestmark = pytest.mark.usefixtures("pg", "live_db")

INDEXES = importlib.import_module("users.migrations.0002_search_and_filter_indexes")


def _index(name: str) -> tuple[bool, str] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [name],
        )
        return cursor.fetchone()


def _leave_invalid_index(name: str) -> None:
    """What a failed CREATE INDEX CONCURRENTLY leaves: an INVALID index of that name."""
    Signup.objects.create(full_name="Same Name", email="one@example.com")
    Signup.objects.create(full_name="Same Name", email="two@example.com")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        with pytest.raises(Exception, match="could not create unique index"):
            cursor.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{name}" ON users_signup (full_name)')
    assert _index(name)[0] is False


def _builds(operation) -> str | None:
    """Return the name of the index a 0002 operation builds."""
    index = getattr(operation, "index", None)
    return getattr(operation, "index_name", None) or (index.name if index is not None else None)


def _run(operation) -> None:
    state = MigrationExecutor(connection).loader.project_state(("users", "0002_search_and_filter_indexes"))
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("users", editor, state, state)


@pytest.mark.parametrize("name", ["users_signup_name_trgm", "users_signup_country_idx"])
def test_running_0002_again_replaces_an_invalid_index_left_by_a_failed_build(name):
    operation = next(op for op in INDEXES.Migration.operations if _builds(op) == name)
    valid, definition = _index(name)
    assert valid
    _leave_invalid_index(name)
    _run(operation)
    assert _index(name) == (True, definition)  # the original index, valid again
    _run(operation)  # and once more: a valid index from an earlier run is kept
    assert _index(name) == (True, definition)


def test_migrations_wait_for_locks_at_most_lock_timeout_but_statements_as_long_as_they_take(settings):
    from django.core.management import call_command

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == f"{settings.DATABASE_BOUNDS['lock_timeout'] // 1000}s"
    seen = {}

    def record(using, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
            seen["during"] = cursor.fetchone()

    from django.db.models.signals import pre_migrate

    pre_migrate.connect(record, dispatch_uid="test-record")  # runs after ours has lifted statement_timeout
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="test-record")
    assert seen["during"] == ("0", "3s")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "5s"  # back to the usual limit after migrate
