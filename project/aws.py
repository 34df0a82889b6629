"""The AWS clients the project itself needs (Secrets Manager, RDS IAM tokens): built once, lazily, with
explicit timeouts and bounded retries. boto3 honours AWS_ENDPOINT_URL / AWS_REGION from the environment.
(The ops dashboard's CloudWatch client lives in ops/cloudwatch.py.)"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time

logger = logging.getLogger("project.aws")

REFETCH_MIN_INTERVAL = 5.0  # a rejected password refetches the secret at most this often per process
IAM_TOKEN_LIFETIME = 15 * 60
IAM_TOKEN_RENEW_AFTER = 10 * 60  # renew well before the token's 15 minutes run out


@functools.cache
def client(service: str):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.session.Session().client(service, config=config)


class DatabaseCredentials:
    """Database credentials from a Secrets Manager secret (the JSON RDS writes), cached per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dict, float]] = {}
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._forced: dict[str, float] = {}  # when a rejection last made us refetch each secret

    def get(self, arn: str) -> dict:
        with self._lock:
            cached = self._cache.get(arn)
        return cached[0] if cached else self._fetch(arn)

    def after_rejection(self, arn: str, rejected_password: str) -> dict | None:
        """Return newer credentials after PostgreSQL rejected `rejected_password`, or None if there are none.

        Another thread may already hold the rotated secret; otherwise fetch it (at most once per
        REFETCH_MIN_INTERVAL per process, so a wrong password cannot hammer Secrets Manager).
        """
        with self._lock:
            cached = self._cache.get(arn)
            last_forced = self._forced.get(arn, float("-inf"))
        if cached and cached[0].get("password") != rejected_password:
            return cached[0]
        if time.monotonic() - last_forced < REFETCH_MIN_INTERVAL:
            return None
        with self._lock:
            self._forced[arn] = time.monotonic()
        fresh = self._fetch(arn)
        return fresh if fresh.get("password") != rejected_password else None

    def _fetch(self, arn: str) -> dict:
        raw = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        secret = json.loads(raw)
        creds = {key: secret[key] for key in ("username", "password", "host", "port", "dbname") if secret.get(key)}
        with self._lock:
            self._cache[arn] = (creds, time.monotonic())
        logger.info("database credentials loaded from Secrets Manager (user %s)", creds.get("username"))
        return creds

    def iam_token(self, host: str, port: int, user: str) -> str:
        """Return an RDS IAM auth token for (host, port, user), renewed before it expires."""
        key = (host, port, user)
        with self._lock:
            cached = self._tokens.get(key)
        if cached and time.monotonic() - cached[1] < IAM_TOKEN_RENEW_AFTER:
            return cached[0]
        token = client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        with self._lock:
            self._tokens[key] = (token, time.monotonic())
        return token

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._tokens.clear()
            self._forced.clear()


credentials = DatabaseCredentials()
