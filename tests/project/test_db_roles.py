"""Least privilege: the app runs as a role that reads and writes the app's rows and nothing else."""

import re

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests.helpers import Browser
from users.models import Erasure, Signup

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DROP TABLE users_signup",
        "TRUNCATE users_signup",
        "ALTER TABLE users_signup ADD COLUMN extra int",
        "CREATE INDEX intruder_idx ON users_signup (phone)",
        "DELETE FROM django_migrations",
    ],
)
def test_the_app_role_cannot_change_the_schema_or_empty_a_table(pg, statement):
    with psycopg.connect(pg.primary_url, autocommit=True) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)


def test_the_app_role_has_its_timeouts_and_pg_monitor_and_owns_nothing(pg):
    with psycopg.connect(pg.primary_url, autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone()[0] == pg.user
        assert app.execute("SHOW statement_timeout").fetchone()[0] == "5s"
        owned = app.execute("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles "
                            "WHERE rolname = current_user)").fetchone()[0]  # fmt: skip
        assert owned == 0
        assert app.execute("SELECT pg_has_role('pg_monitor', 'member')").fetchone()[0] is True
        # pg_monitor: the ops dashboard sees other sessions' states (a bare role sees NULL)
        states = app.execute("SELECT count(*) FROM pg_stat_activity WHERE state IS NULL AND "
                             "backend_type = 'client backend'").fetchone()[0]  # fmt: skip
        assert states == 0


def test_setup_db_roles_is_idempotent(pg, capsys):
    call_command("setup_db_roles")
    call_command("setup_db_roles")
    assert "updated role signup_app" in capsys.readouterr().out
    with psycopg.connect(pg.primary_url, autocommit=True) as app:
        assert app.execute("SELECT count(*) FROM users_signup").fetchone() == (0,)


def test_the_app_role_is_in_rds_iam_only_without_a_password(pg, monkeypatch):
    """RDS: IAM tokens (no password) need rds_iam; RDS Proxy's password login is refused to its members."""
    pg.admin_sql("DO $$ BEGIN CREATE ROLE rds_iam NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                 dbname=pg.db)  # fmt: skip
    member = f"SELECT pg_has_role('{pg.user}', 'rds_iam', 'member')"
    try:
        monkeypatch.delenv("DATABASE_APP_PASSWORD", raising=False)
        call_command("setup_db_roles")
        assert pg.admin_sql(member, dbname=pg.db) == [(True,)]
        monkeypatch.setenv("DATABASE_APP_PASSWORD", pg.password)  # the password it has: the app keeps working
        call_command("setup_db_roles")
        assert pg.admin_sql(member, dbname=pg.db) == [(False,)]
    finally:
        pg.admin_sql("DROP ROLE IF EXISTS rds_iam", dbname=pg.db)


def _admin_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_everything_the_app_does_works_as_the_app_role(app_server, pg):
    # Signup, through gunicorn running as the app's role.
    visitor = Browser(app_server.url)
    assert (
        visitor.post_form(
            "/signup/", {"consent": "on", "full_name": "Rosalind Franklin", "email": "rf@example.com"}
        ).status
        == 200
    )
    signup = Signup.objects.get(email="rf@example.com")
    User.objects.create_superuser("rolecheck", password="a-long-role-check-password")
    staff = Browser(app_server.url)
    # Axes records a failed login (INSERT), then a good one logs in (a session row).
    failed = staff.post_form("/admin/login/", {"username": "rolecheck", "password": "wrong"})
    assert failed.status == 200 and "Please enter the correct" in failed.body
    good = staff.post_form("/admin/login/?next=/admin/", {"username": "rolecheck",
                                                          "password": "a-long-role-check-password"})  # fmt: skip
    assert good.status == 200 and "Site administration" in good.body
    pg.wait_for_replica()
    listing = staff.get("/admin/users/signup/?q=rosalind")
    assert listing.status == 200 and "Rosalind Franklin" in listing.body
    export_page = staff.get("/admin/users/signup/export-csv/")  # a GET only asks; the POST exports
    export = staff.request(
        "/admin/users/signup/export-csv/",
        data={"csrfmiddlewaretoken": _admin_token(export_page.body), "scope": "all"},  # unconfirmed: not contactable
    )
    assert export.status == 200 and "rf@example.com" in export.body
    confirm = staff.get(f"/admin/users/signup/{signup.pk}/erase/")
    assert confirm.status == 200
    erased = staff.request(f"/admin/users/signup/{signup.pk}/erase/",
                           data={"csrfmiddlewaretoken": _admin_token(confirm.body)})  # fmt: skip
    assert erased.status == 200
    assert Signup.objects.get(pk=signup.pk).email == f"erased-{signup.pk}@invalid"
    assert Erasure.objects.filter(signup_id=signup.pk).exists()
    logout = staff.request("/admin/logout/", data={"csrfmiddlewaretoken": _admin_token(staff.get("/admin/").body)})
    assert logout.status == 200  # the session row is deleted
