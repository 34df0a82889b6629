"""Structured logs: one JSON line per request with its route, nothing secret in any line (project/requestlog.py).

The first test runs the real app under gunicorn; the others capture the app's lines in-process through the
same filter and formatter, for links with tokens, URLs that match no route and a 500.
"""

import io
import json
import logging
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import User
from django.test import Client

from devenv.servers import AppServer, ProxyServer, free_port
from project.requestlog import JsonFormatter, RequestContextFilter, redact
from tests.conftest import SERVICES
from tests.helpers import Browser
from users import tokens

EMAIL = "grace.hopper@navy.example.org"
PASSWORD = "Sup3r-Secret-Passw0rd"


@pytest.mark.slow
@pytest.mark.usefixtures("live_db")
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


# --- tokens never reach a line: the route is logged, Django's error records are scrubbed --------------------
@pytest.fixture
def lines():
    """Every line the app logs while the test runs, as production formats them (JSON, filtered, INFO)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _secrets_of(token: str) -> list[str]:
    """The token and its parts that open something alone (the payload and the signature)."""
    payload, _, signature = token.split(":")
    return [token, payload, signature, token.replace(":", "%3A")]


def _assert_absent(found: list[dict], token: str) -> None:
    text = json.dumps(found)
    assert found and not [part for part in _secrets_of(token) if part in text]


def _requests(found: list[dict]) -> list[dict]:
    return [line for line in found if line["name"] == "project.request"]


@pytest.mark.usefixtures("live_db")
def test_token_links_log_their_route_not_their_token(lines):
    client = Client()
    manage = tokens.make(tokens.MANAGE, 424242, "ada@example.com")
    confirm = tokens.make(tokens.CONFIRM, 424242, "ada@example.com")
    unsubscribe = tokens.make(tokens.UNSUBSCRIBE, 424242, "ada@example.com")
    statuses = [
        client.get(f"/my-data/{manage}/").status_code,
        client.get(f"/my-data/{manage.replace(':', '%3A')}/").status_code,  # colons percent-encoded
        client.post(f"/my-data/unsubscribe/{unsubscribe}/").status_code,  # RFC 8058's one-click POST
        client.get(f"/my-data/unsubscribe/{unsubscribe}/?utm=mail").status_code,
        client.get(f"/signup/confirm/{confirm}/").status_code,
    ]
    found = lines()
    for token in (manage, confirm, unsubscribe):
        _assert_absent(found, token)
    assert [(r["path"], r["status"]) for r in _requests(found)] == [
        ("/my-data/<str:token>/", statuses[0]),
        ("/my-data/<str:token>/", statuses[1]),
        ("/my-data/unsubscribe/<str:token>/", statuses[2]),
        ("/my-data/unsubscribe/<str:token>/", statuses[3]),
        ("/signup/confirm/<str:token>/", statuses[4]),
    ]
    assert _requests(found)[0]["message"] == f"GET /my-data/<str:token>/ {statuses[0]}"


@pytest.mark.usefixtures("live_db")
def test_a_url_matching_no_route_is_logged_without_its_text(lines):
    token = tokens.make(tokens.MANAGE, 424242, "ada@example.com")
    client = Client()
    first = client.get(f"/my-data/{token}/nothing-here/")
    second = client.get("/ada.lovelace@example.com/profile/")
    third = client.get(f"/my-data/{token}")  # no slash: CommonMiddleware redirects to the URL with the token
    found = lines()
    _assert_absent(found, token)
    assert "ada.lovelace" not in json.dumps(found)
    assert (first.status_code, second.status_code) == (404, 404)
    assert [r["path"] for r in _requests(found)] == ["<unmatched>"] * 3
    assert _requests(found)[2]["status"] == third.status_code


@pytest.mark.usefixtures("live_db")
def test_a_path_a_middleware_answers_keeps_its_text(lines):
    """/health (ops.middleware) and a static file (WhiteNoise) match no route, but are ours: their path stays."""
    from django.templatetags.static import static

    stylesheet = static("css/site.css")
    assert Client().get("/health").status_code == 200
    assert Client().get(stylesheet).status_code == 200
    assert [r["path"] for r in _requests(lines())] == ["/health", stylesheet]


@pytest.mark.urls("tests.project.logging_urls")
@pytest.mark.usefixtures("live_db")
def test_a_500_on_a_token_url_logs_the_route_in_every_field_and_traceback(lines):
    token = tokens.make(tokens.MANAGE, 424242, "ada@example.com")
    response = Client(raise_request_exception=False).get(f"/boom/{token}/?next=/my-data/{token}/")
    found = lines()
    assert response.status_code == 500
    _assert_absent(found, token)
    error = next(line for line in found if line["name"] == "django.request")
    assert error["request"] == "/boom/<str:token>/" and error["status_code"] == 500
    assert error["message"] == "Internal Server Error: /boom/<str:token>/"
    assert "ValueError: could not open *** for /boom/<str:token>/" in error["exc_info"]
    assert [(r["path"], r["status"]) for r in _requests(found)] == [("/boom/<str:token>/", 500)]
    assert error["request_id"] == _requests(found)[0]["request_id"]  # the same request, joined by its id


def test_lines_outside_a_request_are_still_redacted(lines):
    token = tokens.make(tokens.MANAGE, 7, "ada@example.com")
    logging.getLogger("gunicorn.error").error("Error handling request /my-data/%s/", token)
    logging.getLogger("users").info("mail to grace@example.org", extra={"count": 2})
    found = lines()
    _assert_absent(found, token)
    assert found[1]["message"] == "mail to g***@example.org" and found[1]["count"] == 2
    assert found[0]["request_id"] == "-" and found[0]["timestamp"].endswith("Z")


@pytest.mark.slow
@pytest.mark.usefixtures("live_db")
def test_nginx_writes_a_line_only_for_requests_gunicorn_never_answered(tmp_path):
    """One access line per request: the app's for what gunicorn answered, nginx's for the rest."""
    app = AppServer(env={**SERVICES.environ(), "LOG_FORMAT": "json"}, workers=1, threads=2)
    app.start(log=tmp_path / "app.log")
    proxy, orphan = ProxyServer(upstream_port=app.port), ProxyServer(upstream_port=free_port())  # nothing there
    try:
        proxy.start()
        orphan.start()
        served = [urllib.request.urlopen(f"{proxy.url}{path}", timeout=10).status for path in ("/", "/signup/")]
        refused = []
        for url, data in ((f"{proxy.url}/signup/", b"a" * (1024 * 1024 + 1)), (f"{orphan.url}/", None)):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10)
            refused.append(err.value.code)
    finally:
        for server in (proxy, orphan, app):
            server.stop()
    assert served == [200, 200] and refused == [413, 503]
    proxied = [json.loads(line) for line in (proxy.root / "access.log").read_text().splitlines()]
    unanswered = [json.loads(line) for line in (orphan.root / "access.log").read_text().splitlines()]
    assert [line["status"] for line in proxied] == [413] and [line["status"] for line in unanswered] == [503]
    app_lines = [json.loads(line) for line in (tmp_path / "app.log").read_text().splitlines()]
    assert [r["path"] for r in _requests(app_lines) if r["path"] != "/health"] == ["/", "/signup/"]
