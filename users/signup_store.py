"""Storing a signup: the row, its consent event and its email in one statement (users.views calls `store`).

1. On PostgreSQL one statement, one round trip (the row, its consent event, its email, its api Event for the
   webhooks, and the topics chosen, if any: a membership and a `given` event per topic, from two arrays
   unnested once in the statement, joined with formdef_topic so that a topic gone since the form was shown is
   skipped, never an error; no topic chosen: no such part): INSERT ... ON CONFLICT DO NOTHING, so a known
   address raises no unique-violation ERROR (whose STATEMENT line would carry the person's data into the
   server log).
2. The statement is built from the models' own fields (ours and the queue library's), so a new column is
   never forgotten; only table and column names are formatted in, every value is a parameter.
3. Elsewhere (SQLite, local mode) the same happens in one transaction of ORM calls.

This module imports the model and the queue; neither imports it back.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connections, models, router, transaction
from django.utils import timezone
from django_tasks_db import signal_handlers
from django_tasks_db.models import DBTaskResult

from api import events
from api.models import Event
from formdef.models import Topic
from project.db import state
from project.db.monitor import WRITE_POSITION_SQL, lsn_to_int
from users import tasks
from users.models import ConsentEvent, Signup, SignupTopic, is_email_conflict

logger = logging.getLogger("users")


def store(signup: Signup, *, ip: str | None, notice_after: timedelta, topics: Sequence[tuple[int, str]] = ()) -> bool:
    """Store a new signup with its `given` event and its confirmation email, or queue a notice for a known one.

    `topics`: (topic id, wording version) of each topic chosen (formdef.topicfields.chosen); a known address
    joins none here (it manages its topics from its own page).

    Returns whether a new row was stored (the view answers the same either way). On PostgreSQL this is
    one statement, one round trip: INSERT ... ON CONFLICT DO NOTHING, so a known address raises no
    unique-violation ERROR (whose STATEMENT line would carry the person's data into the server log);
    in the same statement the known row's notice_sent_at is stamped (at most one notice per
    `notice_after`) and the email rows (users.tasks) are queued. Elsewhere (SQLite, local mode) the
    same happens in one transaction of ORM calls.
    """
    using = router.db_for_write(Signup)
    if connections[using].vendor == "postgresql":
        return _one_statement(signup, ip=ip, notice_after=notice_after, using=using, topics=topics)
    return _orm(signup, ip=ip, notice_after=notice_after, using=using, topics=topics)


def insert_parts(instance: models.Model, connection, overrides: dict[str, str]) -> tuple[str, str, list]:
    """Return the column list, value expressions and parameters that INSERT `instance` (every concrete field).

    `overrides` maps a column to an SQL expression used instead of the instance's value; built from the
    model's fields, so a new column (ours or the queue library's) is never forgotten.
    """
    columns, values, params = [], [], []
    for field in _inserted_fields(instance, overrides):
        columns.append(connection.ops.quote_name(field.column))
        if field.column in overrides:
            values.append(overrides[field.column])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(instance, add=True), connection))
    return ", ".join(columns), ", ".join(values), params


def _inserted_fields(instance: models.Model, overrides: dict[str, str] | None = None) -> list:
    """The concrete fields an INSERT of `instance` writes: not generated ones, nor an auto primary key (unless
    overridden)."""
    overrides = overrides or {}
    return [
        field
        for field in instance._meta.concrete_fields
        if not field.generated  # the database computes it (Signup.status)
        and not (field.primary_key and field.column not in overrides and isinstance(field, models.AutoField))
    ]


def _one_statement(signup: Signup, *, ip: str | None, notice_after: timedelta, using: str, topics=()) -> bool:
    connection = connections[using]
    now = timezone.now()
    cols, vals, params = insert_parts(signup, connection, {})
    event = ConsentEvent(signup_id=0, kind=ConsentEvent.GIVEN, at=signup.consent_at or now,
                         wording_version=signup.consent_version, ip=ip)  # fmt: skip
    created = Event(type=Event.CREATED, signup_id=0, at=now, fanned_out=False)  # the webhooks' outbox (api/)
    v_cols, v_vals, v_params = insert_parts(created, connection, {"signup_id": "s.id"})
    t_cols, t_vals, t_params = _email_insert_parts(connection, signup_id_sql="q.id", kind_sql="q.kind")
    ledger_sql, ledger_args = _ledger_parts(event, connection, consent=signup.consent, topics=topics)
    # Only table and column names from the models are formatted in; every value is a parameter.
    insert = f"INSERT INTO {Signup._meta.db_table} ({cols}) VALUES ({vals})"  # noqa: S608
    sql = (
        f"WITH s AS ({insert} ON CONFLICT DO NOTHING RETURNING id),"  # noqa: S608
        f"{ledger_sql}"
        f" v AS (INSERT INTO {Event._meta.db_table} ({v_cols}) SELECT {v_vals} FROM s),"
        f" d AS (UPDATE {Signup._meta.db_table} SET notice_sent_at = %s WHERE lower(email) = lower(%s)"
        "   AND NOT EXISTS (SELECT 1 FROM s) AND email_blocked_at IS NULL"
        "   AND (notice_sent_at IS NULL OR notice_sent_at <= %s) RETURNING id),"
        " q AS (SELECT id, 'confirm' AS kind FROM s UNION ALL SELECT id, 'already' FROM d),"
        f" t AS (INSERT INTO {tasks.table()} ({t_cols}) SELECT {t_vals} FROM q)"
        f" SELECT EXISTS (SELECT 1 FROM s), {WRITE_POSITION_SQL}"  # and the position to read it back at
    )
    args = [*params, *ledger_args, *v_params, now, signup.email, now - notice_after, *t_params]
    started = time.monotonic()
    try:
        created, lsn, timeline = _run(connection, sql, args)
    except (OperationalError, InterfaceError):
        # A kept connection that died while idle (a failover, a terminated backend: no health check ran, see
        # DATABASE_HEALTH_CHECK_IDLE) fails at once: run the statement once more on a new connection. Not
        # inside a transaction, and not after a slow failure (a frozen server: the deadline already passed).
        raw = connection.connection
        if connection.in_atomic_block or not (raw is None or raw.closed) or time.monotonic() - started > 1.0:
            raise
        logger.warning("signup: the kept connection was lost before the statement, trying a new one")
        connection.close()
        # Were the first run's commit to have reached the server, this run finds the address taken: the
        # person still sees the same page (and gets at most one "already signed up" email an hour).
        created, lsn, timeline = _run(connection, sql, args)
    state.note_position(timeline, lsn_to_int(lsn))  # the position cookie needs no query of its own
    return created


def _ledger_parts(event: ConsentEvent, connection, *, consent: bool, topics) -> tuple[str, list]:
    """Return the statement's ledger part and its parameters: the form's `given` event, and with topics chosen a
    `given` event and a membership per topic (no topic: the plain signup's part, each shape prepared once)."""
    if not topics:
        e_cols, e_vals, e_params = insert_parts(event, connection, {"signup_id": "s.id"})
        sql = f" e AS (INSERT INTO {ConsentEvent._meta.db_table} ({e_cols}) SELECT {e_vals} FROM s WHERE %s),"  # noqa: S608
        return sql, [*e_params, consent]
    e_cols, e_vals, e_params = insert_parts(event, connection, _TOPIC_EVENT)
    sql, membership_params = _topic_statement(connection, e_cols, e_vals)
    ids, wordings = _topic_arrays(tuple(topics))
    return sql, [ids, wordings, *e_params, event.wording_version, consent, *membership_params]


@functools.lru_cache(maxsize=256)
def _topic_arrays(topics: tuple[tuple[int, str], ...]) -> tuple[str, str]:
    """Return the chosen (topic id, wording) pairs as two PostgreSQL array literals, made once per choice.

    A handful of choices recur (a version's topics, a language's wordings); psycopg's list dumper inspected both
    lists for every signup (~20 µs of the request's CPU in bench/signup.py's 'fields' rounds).
    """
    ids = ",".join(str(int(pk)) for pk, _w in topics)
    wordings = ",".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for _pk, w in topics)
    return f"{{{ids}}}", f"{{{wordings}}}"


@functools.cache
def _topic_statement(connection, e_cols: str, e_vals: str) -> tuple[str, list]:
    """The ledger part with topics, and the memberships' parameters (none differs between signups).

    x(topic_id, wording): the chosen topics, joined with the table (a topic gone since is skipped).
    e: one INSERT writes the form's `given` event (r's first row: no topic, the form's wording) and a `given`
    event per topic; m: a membership for each topic event e wrote, chosen when it was given. So the ledger
    table is written by one part, and the memberships need nothing from the request.
    """
    member = SignupTopic(signup_id=0, topic_id=0)
    kept = [f for f in _inserted_fields(member, _MEMBERSHIP) if f.column not in _MEMBERSHIP]
    if any(
        getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) or (f.has_default() and callable(f.default))
        for f in kept
    ):
        raise RuntimeError("SignupTopic: a value computed per row would be frozen at its first (set it in SQL)")
    m_cols, m_vals, m_params = insert_parts(member, connection, _MEMBERSHIP)
    topic_table, event_table = Topic._meta.db_table, ConsentEvent._meta.db_table
    sql = (
        f" x AS (SELECT {topic_table}.id AS topic_id, c.wording FROM unnest(%s::bigint[], %s::text[])"  # noqa: S608
        f" AS c(topic_id, wording) JOIN {topic_table} ON {topic_table}.id = c.topic_id),"
        f" e AS (INSERT INTO {event_table} ({e_cols}) SELECT {e_vals} FROM s CROSS JOIN"
        " (SELECT NULL::bigint AS topic_id, %s::text AS wording UNION ALL SELECT topic_id, wording FROM x) r"
        " WHERE %s RETURNING signup_id, topic_id, wording_version, at),"
        f" m AS (INSERT INTO {SignupTopic._meta.db_table} ({m_cols}) SELECT {m_vals} FROM e"
        " WHERE e.topic_id IS NOT NULL),"
    )
    return sql, m_params


def _run(connection, sql: str, args: list) -> tuple:
    with _server_bound_cursor(connection) as cursor:  # autocommit: one statement is one transaction
        cursor.execute(_numbered(sql) if settings.DATABASE_SERVER_BINDING else sql, args)
        return cursor.fetchone()


@functools.lru_cache(maxsize=16)
def _numbered(sql: str) -> str:
    """Return `sql` with PostgreSQL's own placeholders ($1, $2, ...) for its %s, for psycopg's RawCursor.

    psycopg rewrites %s itself and keeps the rewrite only for statements under 4 KB with at most 50
    parameters (psycopg/_queries.py); the signup's statement with topics is longer and took ~0.2 ms a signup
    to rewrite. Each shape of the statement is rewritten once here (no literal % in it: names and parameters).
    """
    parts = sql.split("%s")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


def _server_bound_cursor(connection):
    """Return Django's cursor wrapper (error wrapping, query log) around a cursor that binds on the server.

    Django's psycopg cursors bind parameters on the client, so PostgreSQL parses and plans every statement
    afresh; bound on the server and prepared, the signup's five-part statement is parsed and planned once
    per connection.
    DATABASE_SERVER_BINDING=0 (Terraform sets it with RDS Proxy, which pins a session to one database
    connection once it sees a prepared statement) keeps Django's client-side binding.
    """
    if not settings.DATABASE_SERVER_BINDING:  # behind RDS Proxy: a prepared statement would pin the session
        return connection.cursor()
    connection.cursor().close()  # Django's way in: connects, or checks a kept connection that sat idle
    # Django turns psycopg's preparing off (prepare_threshold None); its client-binding cursors never prepare,
    # so this turns it on for server-bound statements only: this one, prepared at its first run.
    connection.connection.prepare_threshold = 0
    raw = psycopg.RawCursor(connection.connection)  # $n placeholders, sent as they are (`_numbered`)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _orm(signup: Signup, *, ip: str | None, notice_after: timedelta, using: str, topics=()) -> bool:
    now = timezone.now()
    with transaction.atomic(using=using):
        try:
            with transaction.atomic(using=using):
                signup.save(using=using, force_insert=True)
        except IntegrityError as exc:
            if not is_email_conflict(exc):
                raise
            known = Signup.objects.using(using).filter(email__iexact=signup.email, email_blocked_at__isnull=True)
            due = known.filter(models.Q(notice_sent_at__isnull=True) | models.Q(notice_sent_at__lte=now - notice_after))
            pk = due.values_list("pk", flat=True).first()
            if pk is not None and due.filter(pk=pk).update(notice_sent_at=now):
                tasks.enqueue_email(pk, "already")
            return False
        if signup.consent:
            given = {"kind": ConsentEvent.GIVEN, "at": signup.consent_at or now, "ip": ip}
            ConsentEvent.objects.using(using).create(signup=signup, wording_version=signup.consent_version, **given)
            known = set(
                Topic.objects.using(using).filter(pk__in=[pk for pk, _w in topics]).values_list("pk", flat=True)
            )
            for pk, wording in topics:
                if pk in known:
                    SignupTopic.objects.using(using).create(signup=signup, topic_id=pk, wording_version=wording,
                                                            chosen_at=given["at"])  # fmt: skip
                    ConsentEvent.objects.using(using).create(signup=signup, topic_id=pk, wording_version=wording,
                                                             **given)  # fmt: skip
        tasks.enqueue_email(signup.pk, "confirm")
        events.record(Event.CREATED, signup.pk, using=using)
    return True


# The ledger rows of a signup with topics (`_topic_statement`): r holds the form's row and one per topic.
_TOPIC_EVENT = {"signup_id": "s.id", "topic_id": "r.topic_id", "wording_version": "r.wording"}
# A membership per topic event: its topic, the wording agreed to, chosen when given.
_MEMBERSHIP = {
    "signup_id": "e.signup_id",
    "topic_id": "e.topic_id",
    "wording_version": "e.wording_version",
    "chosen_at": "e.at",
}


@functools.cache
def _email_insert_parts(connection, *, signup_id_sql: str, kind_sql: str) -> tuple[str, str, list]:
    """Return columns, value expressions and parameters to INSERT email rows from a query's (id, kind).

    The row is what `tasks.send_email.enqueue(signup_id=..., kind=...)` writes, built from the library's
    own model (its defaults and pre-save rules), with the id, the arguments and the time computed in SQL,
    so the signup's INSERT, its event and its email travel in one statement (`store`).
    Nothing else in the row changes between calls: built once per connection.
    """
    backend = tasks.send_email.get_backend()
    proto = DBTaskResult(
        id=None,
        args_kwargs={},
        priority=tasks.send_email.priority,
        task_path=tasks.send_email.module_path,
        queue_name=tasks.send_email.queue_name,
        run_after=tasks.send_email.run_after,
        backend_name=backend.alias,
    )
    signal_handlers.set_run_after(DBTaskResult, proto)  # what the library's pre_save handler does
    kwargs = f"jsonb_build_object('signup_id', {signup_id_sql}, 'kind', {kind_sql})"
    args = f"jsonb_build_object('args', '[]'::jsonb, 'kwargs', {kwargs})"
    overrides = {"id": "gen_random_uuid()", "args_kwargs": args, "enqueued_at": "statement_timestamp()"}
    return insert_parts(proto, connection, overrides)
