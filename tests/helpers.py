"""Small helpers shared by tests (HTTP against a live server, CSRF-valid form posts)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    body: str
    headers: dict
    url: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # hand the 3xx back to the caller


class Browser:
    """A cookie-keeping HTTP client for a live server (what a person's browser does, minus JavaScript)."""

    def __init__(self, base_url: str, headers: dict | None = None, follow_redirects: bool = True) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)] + ([] if follow_redirects else [_NoRedirect()])
        self.opener = urllib.request.build_opener(*handlers)
        self.headers = headers or {}

    def request(self, path: str, data: dict | None = None, headers: dict | None = None) -> Reply:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body, headers={**self.headers, **(headers or {})})
        try:
            with self.opener.open(req, timeout=30) as resp:
                return Reply(resp.status, resp.read().decode(), dict(resp.headers), resp.url)
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read().decode(errors="replace"), dict(err.headers), err.url)

    def get(self, path: str, **kw) -> Reply:
        return self.request(path, **kw)

    def csrf_token(self, path: str = "/signup/") -> str:
        page = self.get(path)
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)

    def post_form(self, path: str, fields: dict, token: str | None = None) -> Reply:
        token = token or self.csrf_token(path)
        return self.request(path, data={"csrfmiddlewaretoken": token, **fields})


def ready_detail(base_url: str) -> dict:
    """Return /ready's detailed document from a live server started with devenv's local environment."""
    import json

    from devenv.servers import LOCAL_READY_TOKEN

    reply = Browser(base_url, headers={"Authorization": f"Bearer {LOCAL_READY_TOKEN}"}).get("/ready")
    return json.loads(reply.body)


def sample_replicas() -> None:
    """Let the router trust the replica right away (its monitor otherwise samples in the background)."""
    from project.db.monitor import monitor

    monitor.refresh()


def login_staff(username: str, *codenames: str, client=None):
    """Log a new staff user holding only these `users` permissions into `client` (a CSRF-checking one)."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    client = client or Client(enforce_csrf_checks=True)
    user = User.objects.create_user(username, password="a-long-test-password", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="users", codename__in=codenames))
    client.force_login(user)
    return client


def statement_counts(pg, server=None, *, reset: bool = False, role: str = "") -> dict[str, int]:
    """Calls per statement `role` (the app's) ran on `server` (the primary) since the last reset (pg_stat_statements).

    The test cluster preloads pg_stat_statements (devenv/servers.py); the extension is created on first use
    and reaches the replicas by replication. With `reset` the counters start again from zero.
    """
    server = server or pg.primary
    pg.admin_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=pg.db)
    if reset:
        pg.admin_sql("SELECT pg_stat_statements_reset()", server=server, dbname=pg.db)
        return {}
    rows = pg.admin_sql(
        "SELECT query, calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
        f" WHERE r.rolname = '{role or pg.user}' AND query NOT LIKE '%pg_stat_statements%'",  # our own role names
        server=server,
        dbname=pg.db,
    )
    return {query: calls for query, calls in rows}


def shown_count(client) -> int:
    """Return the count the landing page shows (what a visitor reads, rendered or kept rendered)."""
    page = client.get("/").content.decode()
    return int(re.search(r'data-testid="signup-count">([\d,.\s]+)<', page).group(1).replace(",", "").strip())
