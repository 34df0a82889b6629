"""The client IP on the private_ingress path: client -> API Gateway (REST) -> VPC Link -> NLB -> internal ALB
-> nginx sidecar -> gunicorn.

What arrives at Django on that path (infra/terraform/private.tf):
- X-Client-IP: $context.identity.sourceIp, set by the integration, replacing whatever the caller sent.
- X-Forwarded-For: whatever the caller sent (API Gateway adds no entry of its own), then the address the
  ALB saw: the NLB's private address (VPC Link traffic is PrivateLink, so the NLB cannot preserve it).
- REMOTE_ADDR: the nginx sidecar (127.0.0.1), which passes both headers on unchanged.
"""

import pytest
from django.test import RequestFactory

from project.http import client_ip
from users.models import Signup

NLB = "10.40.5.23"  # the ALB's peer on this path: an NLB node in an app subnet
SIDECAR = "127.0.0.1"
CLIENT = "203.0.113.7"


def _via_api_gateway(source_ip: str, sent_xff: str = "", sent_client_ip: str | None = None) -> dict:
    """The headers Django sees for a caller at source_ip that sent sent_xff (and maybe its own X-Client-IP)."""
    # API Gateway's mapping replaces the caller's X-Client-IP; should a proxy ever append instead, its
    # value comes last, which the tests also cover.
    client_ip_header = source_ip if sent_client_ip is None else f"{sent_client_ip}, {source_ip}"
    xff = ", ".join(part for part in (sent_xff, NLB) if part)
    return {"REMOTE_ADDR": SIDECAR, "HTTP_X_FORWARDED_FOR": xff, "HTTP_X_CLIENT_IP": client_ip_header}


@pytest.fixture
def api_gateway(settings):
    settings.CLIENT_IP_HEADER = "X-Client-IP"
    settings.TRUSTED_PROXY_COUNT = 1  # the ALB: what Terraform sets in both shapes


@pytest.mark.parametrize(
    ("sent_xff", "sent_client_ip"),
    [
        ("", None),  # a plain browser
        ("6.6.6.6", None),  # a forged X-Forwarded-For: on this path it would even be the trusted hop's left
        ("6.6.6.6, 7.7.7.7", "8.8.8.8"),  # everything forged at once
        ("", "not-an-ip"),
    ],
)
def test_the_api_gateway_source_ip_is_the_client(api_gateway, sent_xff, sent_client_ip):
    request = RequestFactory().get("/", **_via_api_gateway(CLIENT, sent_xff, sent_client_ip))
    assert client_ip(request) == CLIENT


def test_without_the_header_setting_x_forwarded_for_hops_decide_and_the_header_is_ignored(settings):
    settings.CLIENT_IP_HEADER = ""
    settings.TRUSTED_PROXY_COUNT = 1
    # The public ALB path: a forged X-Client-IP changes nothing.
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.40.4.9", HTTP_X_FORWARDED_FOR=CLIENT, HTTP_X_CLIENT_IP="6.6.6.6"
    )
    assert client_ip(request) == CLIENT
    # And why the header is needed behind API Gateway: the one trusted hop there is the NLB.
    assert client_ip(RequestFactory().get("/", **_via_api_gateway(CLIENT, "6.6.6.6"))) == NLB


def test_a_request_that_did_not_come_through_api_gateway_falls_back_to_the_hops(api_gateway):
    request = RequestFactory().get("/health", REMOTE_ADDR=SIDECAR, HTTP_X_FORWARDED_FOR=NLB)
    assert client_ip(request) == NLB


# --- the signup rate limit sees each real client behind API Gateway --------------------------------------
@pytest.fixture
def limited(api_gateway, settings):
    settings.SIGNUP_RATE_LIMIT = (3, 600)


def _signup(client, n: int, source_ip: str, forged: str = ""):
    data = {"consent": "on", "full_name": f"Person {n}", "email": f"p{n}@example.com"}
    return client.post("/signup/", data, **_via_api_gateway(source_ip, forged, forged or None))


@pytest.mark.usefixtures("live_db")
def test_the_rate_limit_counts_the_real_client_whatever_it_forges(client, limited):
    # The caller rotates both headers it controls on every request: still one client, refused after 3.
    replies = [_signup(client, n, CLIENT, forged=f"198.18.{n}.{n}").status_code for n in range(5)]
    assert replies == [302, 302, 302, 429, 429]
    assert not Signup.objects.using("default").filter(email="p3@example.com").exists()
    # Everyone arrives from the same NLB address, yet another client is not caught by the first one's limit.
    assert _signup(client, 10, "203.0.113.99").status_code == 302
