"""Structured logs from the real app under gunicorn: one JSON line per request, nothing secret in them."""

import json

import pytest
from django.contrib.auth.models import User

from devenv.servers import AppServer
from project.requestlog import redact
from tests.conftest import SERVICES
from tests.helpers import Browser

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

EMAIL = "grace.hopper@navy.example.org"
PASSWORD = "Sup3r-Secret-Passw0rd"


def test_request_lines_are_json_with_ids_and_nothing_secret(tmp_path, pg):
    User.objects.create_user("logger-staff", password="another long password", is_staff=True)
    log = tmp_path / "app.log"
    app = AppServer(env={**SERVICES.environ(), "LOG_FORMAT": "json"}, workers=1, threads=2)
    app.start(log=log)
    try:
        browser = Browser(app.url)
        signup = browser.post_form("/signup/", {"consent": "on", "full_name": "Grace Hopper", "email": EMAIL})
        browser.post_form(
            "/signup/", {"consent": "on", "full_name": "Grace Hopper", "email": EMAIL}
        )  # duplicate: logged
        login = browser.post_form("/admin/login/?next=/admin/", {"username": "logger-staff", "password": PASSWORD})
        traced = Browser(app.url, headers={"X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678"})
        traced_reply = traced.get("/health")
        plain = Browser(app.url).get("/signup/")
    finally:
        app.stop()
    assert signup.status == 200 and login.status == 200
    text = log.read_text()
    assert EMAIL not in text and PASSWORD not in text and pg.password not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    requests = [line for line in lines if line["name"] == "project.request"]
    assert {"method", "path", "status", "duration_ms", "request_id", "timestamp"} <= set(requests[0])
    assert any(r["path"] == "/signup/" and r["method"] == "POST" and r["status"] == 302 for r in requests)
    assert traced_reply.headers["X-Request-ID"] == "Root=1-67891233-abcdef012345678912345678"
    assert any(r["request_id"] == "Root=1-67891233-abcdef012345678912345678" for r in requests)
    assert len(plain.headers["X-Request-ID"]) == 32
    assert any("duplicate email" in line["message"] for line in lines)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("signup from grace.hopper@navy.example.org", "signup from g***@navy.example.org"),
        ("login password=hunter2 failed", "login password=*** failed"),
        ('{"password": "hunter2"}', '{"password": "***"}'),
        ("postgres://app:s3cr3t@db.internal:5432/app", "postgres://app:***@db.internal:5432/app"),
        ("token: abc.def", "token: ***"),
    ],
)
def test_redaction(raw, expected):
    assert redact(raw) == expected
