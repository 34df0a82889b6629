"""Production settings: `check --deploy` is clean, and the responses carry the hardening headers."""

import http.client
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.servers import AppServer
from tests.conftest import SERVICES

BASE = Path(__file__).resolve().parents[2]
HOST = "signup.example.com"


def _base_env() -> dict:
    """This process's environment minus what the test session itself set (services, the browser's flag)."""
    skip = ("DATABASE_", "REDIS_", "HTTPS", "SECRET_", "DJANGO_ALLOW_ASYNC_UNSAFE")
    return {k: v for k, v in os.environ.items() if not k.startswith(skip)}


def _production_env(tmp_path) -> dict:
    ca = tmp_path / "rds-ca.pem"
    ca.write_text("placeholder CA bundle for the check\n")
    return {
        "DATABASE_URL": "postgres://app@db.internal.example:5432/app",
        "DATABASE_REPLICA_URLS": "postgres://app@replica.internal.example:5432/app",
        "DATABASE_SSLROOTCERT": str(ca),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "TRUSTED_PROXY_COUNT": "1",
        "REDIS_URL": "rediss://cache.internal.example:6379/0",
        "PUBLIC_BASE_URL": f"https://{HOST}",
        "EMAIL_FROM": f"Signups <no-reply@{HOST}>",
        "SES_EVENTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:signups-ses-events",
        "ERASURE_LEDGER_BUCKET": "signups-erasure-ledger",  # as Terraform sets them (ledger.tf)
        "ERASURE_LEDGER_KEY": secrets.token_urlsafe(32),
        "WEBHOOK_SECRET_KEYS": secrets.token_urlsafe(48),  # as Terraform sets it (webhook-secret-keys)
    }


def test_check_deploy_reports_nothing_under_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE, env={**_base_env(), **_production_env(tmp_path)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_plain_database_connections(tmp_path):
    env = {**_base_env(), **_production_env(tmp_path), "DATABASE_SSLMODE": "prefer"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and "project.W006" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "accepted"), [("short", False), ("a" * 60, False), ("django-insecure-" + "x1y2z3" * 10, False)]
)
def test_weak_secret_keys_are_refused(tmp_path, value, accepted):
    env = {**_base_env(), **_production_env(tmp_path), "SECRET_KEY": value}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert (result.returncode == 0) is accepted
    assert "SECRET_KEY is too weak" in result.stderr


@pytest.fixture(scope="module")
def https_app(django_db_setup):
    """The app as deployed behind the ALB: HTTPS on, one trusted proxy hop."""
    env = {**SERVICES.environ(), "HTTPS": "1", "TRUSTED_PROXY_COUNT": "1", "ALLOWED_HOSTS": HOST}
    server = AppServer(env=env, workers=1, threads=2)
    server.start()
    yield server
    server.stop()


def _get(app, path: str, headers: dict) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    conn.request("GET", path, headers={"Host": HOST, **headers})
    response = conn.getresponse()
    response.read()
    return response


def test_https_responses_carry_hsts_csp_and_hardened_cookies(https_app):
    response = _get(https_app, "/signup/", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"})
    assert response.status == 200
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    csp = response.getheader("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith("__Host-csrftoken=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain=" not in cookie


def test_plain_http_is_redirected_but_the_albs_health_checks_are_answered(https_app):
    response = _get(https_app, "/signup/", {"X-Forwarded-Proto": "http"})
    assert response.status == 301 and response.getheader("Location") == f"https://{HOST}/signup/"
    for path in ("/health", "/ready"):
        assert _get(https_app, path, {"Host": "10.0.7.12"}).status == 200
