import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import RequestFactory

from project.http import client_ip

BASE = Path(__file__).resolve().parents[2]
CONFIG_VARS = ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
               "ADMIN_URL", "TRUSTED_PROXY_COUNT", "STATIC_ROOT", "DJANGO_SETTINGS_MODULE")  # fmt: skip


def _django_check(env: dict, tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE, env={**clean, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("TRUSTED_PROXY_COUNT", "one"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("CLIENT_IP_HEADER", "X Client IP"),
        ("DATABASE_URL", "mysql://u:p@db/x"),
        ("DATABASE_URL", "postgres://"),
        ("REDIS_URL", "http://cache:6379"),
        ("ADMIN_URL", "../secret"),
        ("DATABASE_CONN_MAX_AGE", "soon"),
        ("REDIS_TIMEOUT", "fast"),
    ],
)
def test_malformed_value_stops_startup_naming_the_variable(name, value, tmp_path):
    env = {"SECRET_KEY": "k" * 50, name: value}
    result = _django_check(env, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("weights", "message"),
    [("3", "2 replica(s)"), ("3,1,1", "3 weight(s)"), ("3,heavy", "whole numbers"), ("3,0", "at least 1")],
)
def test_replica_weights_must_match_the_replicas(weights, message, tmp_path):
    replicas = "postgres://u@replica-1.internal:5432/app,postgres://u@replica-2.internal:5432/app"
    env = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://u@db.internal:5432/app",
        "DATABASE_SSLMODE": "disable",
        "DATABASE_REPLICA_URLS": replicas,
        "DATABASE_REPLICA_WEIGHTS": weights,
    }
    result = _django_check(env, tmp_path)
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "ImproperlyConfigured" in last and "DATABASE_REPLICA_WEIGHTS" in last and message in last
    env["DATABASE_REPLICA_WEIGHTS"] = "3,1"
    assert _django_check(env, tmp_path).returncode == 0


def test_nothing_set_runs_locally_on_sqlite_and_says_so(tmp_path):
    result = _django_check({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "local mode on SQLite" in result.stdout  # logs go to stdout
    assert "local-memory cache" in result.stdout


def test_secret_key_is_required_once_a_database_is_configured(tmp_path):
    result = _django_check({"DATABASE_URL": "postgres://u@db.internal:5432/app"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


ROUTER = "project.db.router.PrimaryReplicaRouter"


def _check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("project.")}


def test_replicas_without_the_router_is_a_system_check_warning(pg, settings):
    assert _check_ids() == set()  # the session's own configuration is consistent
    settings.DATABASE_ROUTERS = []
    assert "project.W001" in _check_ids()


def test_router_without_replicas_or_without_its_middleware_is_a_warning(pg, settings):
    settings.DATABASES = {"default": settings.DATABASES["default"]}
    assert "project.W003" in _check_ids()
    settings.DATABASES = {**settings.DATABASES}
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "project.db.middleware.RoutingMiddleware"]
    assert "project.W004" in _check_ids()


@pytest.mark.parametrize(
    ("hops", "xff", "remote", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.5", "10.0.0.5"),  # not behind a proxy: the header is ignored
        (1, "198.51.100.7", "10.0.0.5", "198.51.100.7"),  # the ALB appended the real client
        (1, "6.6.6.6, 198.51.100.7", "10.0.0.5", "198.51.100.7"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 198.51.100.7, 10.0.1.1", "10.0.0.5", "198.51.100.7"),
        (1, "", "10.0.0.5", "10.0.0.5"),  # no header: the direct peer
        (1, "not-an-ip", "10.0.0.5", None),
        (1, "2001:db8::1", "10.0.0.5", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_exactly_the_configured_hops(settings, hops, xff, remote, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=xff, REMOTE_ADDR=remote)
    assert client_ip(request) == expected
