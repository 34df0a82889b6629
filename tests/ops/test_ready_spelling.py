"""/ready is hidden from the internet by an ALB rule on the path as sent; the app refuses every other spelling."""

import http.client
from urllib.parse import urlsplit

import pytest

from devenv.servers import LOCAL_READY_TOKEN

pytestmark = pytest.mark.usefixtures("live_db")


def _get(server, raw_path: str, **headers) -> tuple[int, bytes]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    try:
        conn.request("GET", raw_path, headers=headers)  # sent as written: http.client encodes nothing
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


@pytest.mark.parametrize("raw", ["/%72eady", "/%72eady/", "/ready%2F", "/re%61dy?x=1"])
def test_a_percent_encoded_ready_is_refused_even_with_the_token(app_server, raw):
    status, body = _get(app_server, raw, Authorization=f"Bearer {LOCAL_READY_TOKEN}")
    assert status == 404 and b"checks" not in body


def test_ready_as_the_alb_hides_it_still_answers_inside(app_server):
    status, body = _get(app_server, "/ready")
    assert status == 200 and body == b'{"status": "ok"}'
    status, body = _get(app_server, "/ready/?x=1", Authorization=f"Bearer {LOCAL_READY_TOKEN}")
    assert status == 200 and b"checks" in body
