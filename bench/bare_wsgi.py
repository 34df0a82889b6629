"""The ceiling for a signup: a bare WSGI app doing the same INSERT with psycopg, nothing else.

One persistent connection per thread, like Django's CONN_MAX_AGE; no validation, templates or middleware.
"""

import contextlib
import os
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs

import psycopg

_local = threading.local()
SQL = (
    "INSERT INTO users_signup (full_name, email, phone, country, consent, consent_version, created_at, "
    "ip_address, user_agent) VALUES (%s, %s, '', %s, false, '', %s, %s, %s)"
)


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, application_name="bare-wsgi")
    return conn


def application(environ, start_response):
    if environ["PATH_INFO"] == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(size).decode())
    row = (form["full_name"][0], form["email"][0], form.get("country", [""])[0], datetime.now(UTC),
           environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT", "")[:512])  # fmt: skip
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        _conn().execute(SQL, row)
    start_response("303 See Other", [("Location", "/signup/thanks/"), ("Content-Length", "0")])
    return [b""]
