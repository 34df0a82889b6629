"""No live link in any log: a whole manage-link flow through nginx and gunicorn, then every log line read.

The real servers as deployed: deploy/nginx.conf (devenv ProxyServer) in front of gunicorn.conf.py (AppServer,
LOG_FORMAT=json), a real `manage.py worker` sending through moto's SES, and the PostgreSQL primary. The person
signs up, confirms, asks for a new link, opens it, views, exports, withdraws and erases; the old link is refused.
Then every line of our request log and app logs, gunicorn's own lines (error log; its access log is off in
gunicorn.conf.py, and would be read here if it were turned on, as it writes to the same stream), the worker's
log, nginx's access and error logs and PostgreSQL's log is searched for every token and cookie value the flow
saw, whole or in part (payload, signature, timestamp:signature).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from devenv.servers import AppServer, MissingBinary, ProxyServer
from project import logstream
from tests.conftest import CI, SERVICES
from tests.helpers import Browser
from tests.users.mail import LINK, mail_to, sent_mail, start_worker, stop, text_of, worker_env

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

EMAIL = "katherine.johnson@example.com"
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,}:[A-Za-z0-9]{4,}:[A-Za-z0-9_-]{20,}")  # users/tokens.py's signed values
COOKIES = {"confirm", "mydata", "unsubscribe"}


def fragments(value: str) -> set[str]:
    """A signed value and the parts of it that would still be a secret, or a key to one, in a log."""
    payload, stamp, signature = value.rsplit(":", 2)
    return {value, payload, signature, f"{stamp}:{signature}"}


def leaks(text: str, secrets: dict[str, set[str]]) -> set[str]:
    """Return the secrets (by their whole value) any of whose fragments appear in `text`."""
    return {value for value, parts in secrets.items() if any(part in text for part in parts)}


def test_leaks_finds_a_token_or_any_part_of_it():
    token = "WzEsIjcyOWIzN2M4ZDQyM2Y4NWQiLDBd:1xaFpl:KfG4k0p_HqlCIp9toHDAq3vw0xz0HY1U5fiK5kzPU_E"
    secrets = {token: fragments(token)}
    assert leaks(f"GET /my-data/{token}/", secrets) == {token}
    assert leaks("sig KfG4k0p_HqlCIp9toHDAq3vw0xz0HY1U5fiK5kzPU_E", secrets) == {token}
    assert leaks('"path": "/my-data/WzEsIjcyOWIzN2M4ZDQyM2Y4NWQiLDBd:xx"', secrets) == {token}
    assert leaks("GET /my-data/WzEs***/ 302", secrets) == set()  # what redact() leaves: 4 characters


@pytest.fixture
def stack(tmp_path, ses):
    """nginx -> gunicorn (2 x 2) on the session's services, and a worker whose links point at nginx."""
    app = AppServer(env={**SERVICES.environ(), "LOG_FORMAT": "json"}, workers=2, threads=2)
    app.start(log=tmp_path / "gunicorn.log")
    try:
        proxy = ProxyServer(upstream_port=app.port, root=tmp_path / "nginx")
    except MissingBinary as exc:
        app.stop()
        if CI:
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))
    proxy.start()
    env = worker_env(ses.url, PUBLIC_BASE_URL=proxy.url, LOG_FORMAT="json")
    worker = start_worker(env, tmp_path / "worker.log")
    yield proxy, {"gunicorn + our app": tmp_path / "gunicorn.log", "worker": tmp_path / "worker.log",
                  "nginx access": proxy.root / "access.log", "nginx error": proxy.root / "error.log"}  # fmt: skip
    stop(worker)
    proxy.stop()
    app.stop()


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _link(ses, subject: str, prefix: str) -> str:
    message = mail_to(ses, EMAIL, subject)
    return next(_path(u) for u in LINK.findall(text_of(message)) if _path(u).startswith(prefix))


def _cookie_values(*browsers: Browser) -> set[str]:
    return {c.value for b in browsers for c in b.jar if c.name.removeprefix("__Secure-") in COOKIES and c.value}


def test_a_whole_manage_link_flow_leaves_no_token_in_any_log(stack, ses, pg):
    proxy, logs = stack
    pg_offset = pg.primary.log.stat().st_size
    uses: dict[str, int] = {}  # token -> times the flow sent it in a request line

    cookies: set[str] = set()  # every cookie value any response set, as the flow goes

    def open_link(browser: Browser, path: str):
        token = path.strip("/").split("/")[-1]
        uses[token] = uses.get(token, 0) + 1
        reply = browser.get(path)
        cookies.update(_cookie_values(browser))
        return reply

    person = Browser(proxy.url)
    signup = person.post_form("/signup/", {"full_name": "Katherine Johnson", "email": EMAIL, "country": "US",
                                           "consent": "on", "phone": ""})  # fmt: skip
    assert signup.status == 200 and signup.url.endswith("/signup/thanks/")
    # Confirm: the emailed link is exchanged (cookie + clean URL), the page's button POSTs there.
    confirm_form = open_link(person, _link(ses, "confirm", "/signup/confirm/"))
    assert confirm_form.status == 200 and confirm_form.url == f"{proxy.url}/signup/confirm/"
    confirmed = person.post_form("/signup/confirm/", {})
    cookies.update(_cookie_values(person))
    assert confirmed.status == 200 and "your address is confirmed" in confirmed.body.lower()
    old_manage = _link(ses, "confirm", "/my-data/")
    # Another device asks for a new link: the old one is revoked.
    device = Browser(proxy.url)
    assert device.post_form("/my-data/", {"email": EMAIL}).url.endswith("/my-data/sent/")
    manage = _link(ses, "manage your data", "/my-data/")
    assert manage != old_manage
    assert open_link(Browser(proxy.url), old_manage).status == 410
    # Open it, view, export, withdraw, erase: all on the clean URLs with the cookie.
    page = open_link(device, manage)
    assert page.status == 200 and page.url == f"{proxy.url}/my-data/manage/" and "Katherine Johnson" in page.body
    csrf = device.csrf_token("/my-data/manage/")
    export = device.post_form("/my-data/manage/download/", {}, token=csrf)
    assert export.status == 200 and json.loads(export.body)["signup"]["email"] == EMAIL
    withdrawn = device.post_form("/my-data/manage/withdraw/", {}, token=csrf)
    assert withdrawn.status == 200 and withdrawn.url.endswith("/my-data/manage/?withdrawn=1")
    cookies.update(_cookie_values(device))  # renewed at the new link version
    erased = device.post_form("/my-data/manage/erase/", {})
    assert erased.status == 200 and "your data is erased" in erased.body.lower()
    assert open_link(Browser(proxy.url), manage).status == 400

    # Every token the emails held (the confirmation's confirm, manage and unsubscribe links, the new link's manage
    # and unsubscribe links), and every cookie value the flow was given (confirm; manage after confirming; manage
    # from the new link; manage renewed after withdrawal).
    tokens = {t for m in sent_mail(ses.url) for t in TOKEN.findall(text_of(m) + str(m["List-Unsubscribe"]))}
    assert set(uses) <= tokens and len(tokens) == 5 and len(cookies) == 4  # see the comment below
    secrets = {value: fragments(value) for value in tokens | cookies}
    time.sleep(logstream.BATCH_SECONDS * 5)  # gunicorn's workers write their lines a moment later
    texts = {name: path.read_text(errors="replace") for name, path in logs.items()}
    texts["postgresql"] = pg.primary.log.read_bytes()[pg_offset:].decode(errors="replace")
    lines = {name: [line for line in text.splitlines() if line.strip()] for name, text in texts.items()}
    counts = {name: len(found) for name, found in lines.items()}
    print(f"\nlog lines read: {counts}, secrets looked for: {len(secrets)} ({len(tokens)} tokens, "
          f"{len(cookies)} cookies)")  # fmt: skip
    # The logs were really written: a request line per request (nginx writes one only for a request gunicorn
    # never answered: deploy/nginx.conf), the worker's sends.
    requests = [json.loads(line) for line in lines["gunicorn + our app"] if '"project.request"' in line]
    assert len(requests) >= 14
    assert any("email link sent" in line for line in lines["worker"])

    for name, log_lines in lines.items():  # not one line, the request log's route field included
        for line in log_lines:
            assert not leaks(line, secrets), f"a token or cookie in the {name} log: {line}"
    routes = {r["path"] for r in requests}
    assert {"/signup/confirm/<str:token>/", "/my-data/<str:token>/"} <= routes  # the links were logged, as routes
    print(f"{sum(uses.values())} link uses logged as their route, no token in any line")
