"""Erasing a person: confirmed, permission-checked, nothing personal left in the row, the act recorded."""

import logging

import pytest
from django.test import Client
from django.utils import timezone

from tests.helpers import login_staff
from users.models import COLLECTED_FIELDS, Erasure, Signup

pytestmark = pytest.mark.usefixtures("live_db")

PERSON = {
    "full_name": "Ada Lovelace", "email": "Ada.L@example.com", "phone": "+442079460958", "country": "GB",
    "consent": True, "consent_version": "2026-11-v1", "ip_address": "198.51.100.23",
    "user_agent": "Mozilla/5.0 (Analytical Engine)",
}  # fmt: skip


@pytest.fixture
def person(pg):
    row = Signup.objects.create(**PERSON, consent_at=timezone.now())
    pg.wait_for_replica()
    return row


@pytest.fixture
def eraser():
    return login_staff("eraser", "view_signup", "erase_signup")


def _erase(client: Client, pk: int):
    url = f"/admin/users/signup/{pk}/erase/"
    confirm = client.get(url)
    assert confirm.status_code == 200
    return client.post(url, {"csrfmiddlewaretoken": confirm.context["csrf_token"]})


def test_erasure_leaves_no_personal_data_and_records_who_did_it(eraser, person, caplog):
    before = Signup.objects.using("default").get(pk=person.pk)
    with caplog.at_level(logging.INFO, logger="users"):
        response = _erase(eraser, person.pk)
    assert response.status_code == 302 and response["Location"] == f"/admin/users/signup/{person.pk}/change/"
    row = Signup.objects.using("default").get(pk=person.pk)
    assert {field: getattr(row, field) for field in COLLECTED_FIELDS if field != "created_at"} == {
        "full_name": "", "email": f"erased-{person.pk}@invalid", "phone": "", "country": "", "consent": False,
        "consent_at": None, "consent_version": "", "ip_address": None, "user_agent": "",
    }  # fmt: skip
    assert row.created_at == before.created_at  # identifies nobody; keeps the signups-per-day figures true
    stored = " ".join(str(getattr(row, field)) for field in COLLECTED_FIELDS).lower()
    for value in PERSON.values():
        if isinstance(value, str):
            assert value.lower() not in stored
    erasure = Erasure.objects.using("default").get()
    assert (erasure.signup_id, erasure.username) == (person.pk, "eraser")
    assert "ada" not in str(vars(erasure)).lower()  # the proof holds no personal data either
    assert f"signup {person.pk} erased by staff eraser" in caplog.text
    assert "lovelace" not in caplog.text.lower() and "example.com" not in caplog.text.lower()
    page = eraser.get(response["Location"]).content.decode()
    assert "no personal data is left" in page and "Erase person" not in page


def test_erasure_needs_the_erase_permission(person):
    viewer = login_staff("viewer", "view_signup", "export_signup")
    url = f"/admin/users/signup/{person.pk}/erase/"
    assert viewer.get(url).status_code == 403
    assert viewer.post(url).status_code == 403
    assert "Erase person" not in viewer.get(f"/admin/users/signup/{person.pk}/change/").content.decode()
    assert Client().get(url).status_code == 302  # the public: to the login page
    assert Signup.objects.using("default").get(pk=person.pk).email == PERSON["email"]


def test_erasure_is_only_done_by_a_post_with_a_csrf_token(eraser, person):
    url = f"/admin/users/signup/{person.pk}/erase/"
    assert "Yes, erase this person" in eraser.get(url).content.decode()
    assert eraser.post(url).status_code == 403  # no token
    assert Signup.objects.using("default").get(pk=person.pk).full_name == "Ada Lovelace"
    assert not Erasure.objects.using("default").exists()


def test_erasing_twice_changes_nothing_more(eraser, person):
    _erase(eraser, person.pk)
    response = _erase(eraser, person.pk)
    assert response.status_code == 302
    assert Erasure.objects.using("default").count() == 1
    assert "already erased" in eraser.get(response["Location"]).content.decode()


def test_an_erased_person_may_sign_up_again(eraser, person):
    _erase(eraser, person.pk)
    again = Signup.objects.create_unless_duplicate(full_name="Ada Lovelace", email=PERSON["email"])
    assert again is not None and again.pk != person.pk


def test_nobody_deletes_a_signup_in_the_admin(person):
    boss = login_staff("boss", "view_signup", "delete_signup", "erase_signup")
    assert boss.get(f"/admin/users/signup/{person.pk}/delete/").status_code == 403
    assert Signup.objects.using("default").filter(pk=person.pk).exists()


# --- the queue: found through the signup id index, however large ------------------------------------------
QUEUE_ROWS = int(__import__("os").environ.get("ERASURE_QUEUE_ROWS", "2000000"))


def _fill_queue_with_others(pg, count: int) -> None:
    """Insert `count` finished email rows of other people in one INSERT ... SELECT generate_series."""
    import psycopg

    from users import tasks

    tasks.enqueue_email(0, "confirm")  # a template row the library wrote, so every column has a real value
    template = tasks.email_tasks(0).get()
    table = tasks.table()
    # On its own connection without the app role's 5 s statement timeout (filling takes longer).
    url = pg.primary_url.replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn, conn.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table])
        rest = [c for (c,) in cursor.fetchall() if c not in {"id", "args_kwargs", "status", "finished_at"}]
        columns = ", ".join(rest)
        cursor.execute(
            f"INSERT INTO {table} (id, args_kwargs, status, finished_at, {columns})"
            " SELECT gen_random_uuid(), jsonb_build_object('args', '[]'::jsonb, 'kwargs',"
            " jsonb_build_object('signup_id', 1000000000 + g, 'kind', 'confirm')), 'SUCCESSFUL',"
            f" now() - interval '1 day', {', '.join(f't.{c}' for c in rest)}"
            f" FROM {table} t, generate_series(1, %s) g WHERE t.id = %s",
            [count, template.id],
        )
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [template.id])
        cursor.execute(f"ANALYZE {table}")


@pytest.mark.slow
def test_erasure_with_two_million_queue_rows_of_others_never_scans_the_queue(pg):
    import statistics
    import time

    from django.db import connection

    from tests.conftest import OUTPUT
    from users import tasks
    from users.erasure import erase_signup

    started = time.monotonic()
    _fill_queue_with_others(pg, QUEUE_ROWS)
    fill = time.monotonic() - started
    people = []
    for i in range(7):
        row = Signup.objects.create(**{**PERSON, "email": f"p{i}@example.com"}, consent_at=timezone.now())
        tasks.enqueue_email(row.pk, "confirm")
        tasks.enqueue_email(row.pk, "link")
        people.append(row)
    with connection.cursor() as cursor:
        sql, params = tasks.email_tasks(people[0].pk).query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "users_tasks_signup_id_idx" in plan and "Seq Scan" not in plan, plan
    timings = []
    for row in people:
        started = time.monotonic()
        erase_signup(row.pk, None)
        timings.append((time.monotonic() - started) * 1000)
        assert not tasks.email_tasks(row.pk).exists()
    assert tasks.email_tasks().count() == QUEUE_ROWS  # nobody else's row went
    median, worst = statistics.median(timings[1:]), max(timings[1:])  # the first warms the connection's caches
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "erasure-2m-queue-rows.txt").write_text(
        f"{QUEUE_ROWS} finished queue rows of others (filled in {fill:.1f} s); erasure of one person:"
        f" median {median:.1f} ms, worst {worst:.1f} ms, all {[round(t, 1) for t in timings]}\n"
    )
    assert median < 250, timings  # the target is 50 ms on a quiet machine; this one is shared and loaded


def test_the_worker_prunes_finished_rows_older_than_the_setting_and_nothing_else(settings):
    from datetime import timedelta

    from users import tasks

    for pk in range(1, 6):
        tasks.enqueue_email(pk, "confirm")
    rows = list(tasks.email_tasks().order_by("args_kwargs__kwargs__signup_id"))
    now = timezone.now()
    states = [("SUCCESSFUL", 15), ("FAILED", 15), ("SUCCESSFUL", 13), ("READY", None), ("RUNNING", None)]
    for row, (status, days) in zip(rows, states, strict=True):
        finished = now - timedelta(days=days) if days else None
        tasks.email_tasks(row.args_kwargs["kwargs"]["signup_id"]).update(status=status, finished_at=finished)
    assert tasks.prune(keep_days=14, batch=1) == 2
    left = sorted(tasks.email_tasks().values_list("status", flat=True))
    assert left == ["READY", "RUNNING", "SUCCESSFUL"]
