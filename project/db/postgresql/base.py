"""Django's PostgreSQL backend plus bounded waits and credentials from Secrets Manager or RDS IAM tokens.

Every connection is a project.db.bounds.BoundedConnection: its waits end at the client-side deadline and
go through its database's breaker and bulkhead (see bounds.py); connecting goes through them too.

DATABASES entries may carry SECRET_ARN (a Secrets Manager secret holding username/password, and optionally
host/port/dbname) and IAM_AUTH (use an RDS IAM token as the password). When PostgreSQL rejects a password
from the secret, the secret was probably rotated: fetch it again and retry the connection, once.
"""

from __future__ import annotations

import logging
import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, operations

from project.aws import credentials
from project.db import bounds

logger = logging.getLogger("project.db")


def _is_auth_failure(exc: Exception) -> bool:
    return getattr(exc, "sqlstate", None) == "28P01" or "password authentication failed" in str(exc)


class _Driver:
    """psycopg, except that connect() makes BoundedConnections (Django reaches the driver as self.Database)."""

    connect = staticmethod(bounds.BoundedConnection.connect)

    def __getattr__(self, name: str):
        return getattr(psycopg, name)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """What the query log shows; a server-bound cursor (the signup statement, prepared) has no client-side
        query text for Django to read, so it is composed here, as Django does for server-side binding. A
        statement with PostgreSQL's own $n placeholders (a RawCursor's) cannot be composed: shown as sent."""
        query = super().last_executed_query(cursor, sql, params)
        if query is None and not isinstance(cursor, psycopg.ClientCursor):
            if isinstance(cursor, psycopg.RawCursor):
                return sql
            try:
                return self.compose_sql(sql, params)
            except psycopg.errors.DataError:
                return None
        return query


class DatabaseWrapper(base.DatabaseWrapper):
    Database = _Driver()
    ops_class = DatabaseOperations

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        arn = self.settings_dict.get("SECRET_ARN")
        if arn:
            params.update(_from_secret(credentials.get(arn)))
        if self.settings_dict.get("IAM_AUTH"):
            params["password"] = credentials.iam_token(params["host"], int(params.get("port") or 5432), params["user"])
        return params

    def close_if_health_check_failed(self) -> None:
        """Check a kept connection (CONN_HEALTH_CHECKS) only once it has been idle, not right after it answered.

        settings.DATABASE_HEALTH_CHECK_IDLE: a connection lost within that time of its last answer fails its
        request with the 503 page (nothing stored, nothing acknowledged) and is replaced at the end of it, as
        after any error; the round trip of `SELECT 1` is saved on every request of a busy thread.
        """
        answered_at = getattr(self.connection, "answered_at", 0.0)
        idle = time.monotonic() - answered_at
        if self.connection is not None and idle < settings.DATABASE_HEALTH_CHECK_IDLE:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def get_new_connection(self, conn_params: dict):
        breaker = bounds.of(self.alias)
        probe = breaker.admit()
        try:
            with breaker.slot(bounds.wait_limit()):
                connection = self._connect(conn_params)
        except psycopg.errors.ConnectionTimeout:
            breaker.hung(probe, f"no connection within {conn_params.get('connect_timeout')} s")
            raise
        except BaseException:
            breaker.released(probe)
            raise
        breaker.succeeded(probe)
        connection.bounds = breaker
        return connection

    def _connect(self, conn_params: dict):
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError as exc:
            arn = self.settings_dict.get("SECRET_ARN")
            if not arn or not _is_auth_failure(exc):
                raise
            fresh = credentials.after_rejection(arn, conn_params.get("password", ""))
            if fresh is None:
                raise
            logger.warning("database %s refused the secret's password; newer secret found, retrying once", self.alias)
            return super().get_new_connection({**conn_params, **_from_secret(fresh)})


def _from_secret(secret: dict) -> dict:
    mapping = {"username": "user", "password": "password", "host": "host", "port": "port", "dbname": "dbname"}
    return {mapping[key]: value for key, value in secret.items() if key in mapping}
