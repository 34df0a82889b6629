"""SES bounces and complaints through SNS: signature-verified (version 2 only), our topic and its region's SNS
host only, fresh and applied once; 403 for forgeries only, 503 for what a retry may fix, never a 500.

Messages are signed with a test RSA key whose self-signed certificate is served, like SNS's, by a local
HTTP server standing in for the AWS endpoint (AWS_ENDPOINT_URL); the last test goes through moto's real
SNS, which signs (SignatureVersion 2) and delivers to our endpoint over HTTP.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.core import mail

from users import emails, sns
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SUBSCRIBE_URL = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={quote(TOPIC)}&Token=tok"
URL = "/webhooks/ses/"


class FakeAws(BaseHTTPRequestHandler):
    """Serves the signing certificate and answers ConfirmSubscription; records every request."""

    pem: bytes = b""
    seen: list = []
    failures: int = 0  # answer this many requests with 503 first (a certificate fetch that fails for now)
    slow: float = 0.0  # seconds to wait before answering a path holding "slow"

    def do_GET(self):
        self.seen.append((self.headers["Host"], self.path))
        if "slow" in self.path:
            time.sleep(self.slow)
        if FakeAws.failures > 0:
            FakeAws.failures -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def aws(key, settings):
    """The stand-in AWS endpoint, and the settings that point the webhook at it and at our topic."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    FakeAws.pem, FakeAws.seen, FakeAws.failures, FakeAws.slow = cert.public_bytes(serialization.Encoding.PEM), [], 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{server.server_port}"
    settings.SES_EVENTS_TOPIC_ARN = TOPIC
    sns.clear_cache()
    yield FakeAws
    server.shutdown()
    server.server_close()
    sns.clear_cache()


def now_stamp(offset: timedelta = timedelta(0)) -> str:
    """A Timestamp as SNS writes it (UTC, milliseconds, Z)."""
    return (datetime.now(UTC) + offset).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def signed(key, message: dict, version: str = "2") -> dict:
    message = {"TopicArn": TOPIC, "MessageId": str(uuid.uuid4()), "Timestamp": now_stamp(), **message}
    message |= {"SignatureVersion": version, "SigningCertURL": message.get("SigningCertURL", CERT_URL)}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS SignatureVersion 1
    signature = key.sign(sns.canonical(message), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def bounce(*addresses: str, kind: str = "Permanent", subtype: str = "General") -> dict:
    recipients = [{"emailAddress": a, "diagnosticCode": f"550 {a} unknown"} for a in addresses]
    detail = {"bounceType": kind, "bounceSubType": subtype, "bouncedRecipients": recipients}
    event = {"notificationType": "Bounce", "mail": {"destination": list(addresses)}, "bounce": detail}
    return {"Type": "Notification", "Message": json.dumps(event)}


def complaint(address: str) -> dict:
    detail = {"complaintFeedbackType": "abuse", "complainedRecipients": [{"emailAddress": address}]}
    event = {"eventType": "Complaint", "mail": {"destination": [address]}, "complaint": detail}
    return {"Type": "Notification", "Message": json.dumps(event)}


def post(client, message):
    body = message if isinstance(message, bytes | str) else json.dumps(message)
    return client.post(URL, body, content_type="text/plain; charset=utf-8")  # SNS: UTF-8


def _signup(email: str) -> Signup:
    return Signup.objects.create(full_name="Ada Lovelace", email=email, consent=True)


def _blocked() -> dict:
    return dict(Signup.objects.filter(email_blocked_at__isnull=False).values_list("email", "email_blocked_reason"))


def test_a_permanent_bounce_blocks_the_address_whatever_its_case(client, aws, key):
    _signup("Ada@Example.com")
    _signup("grace@example.com")
    response = post(client, signed(key, bounce("ada@EXAMPLE.com")))
    assert response.status_code == 200
    assert _blocked() == {"Ada@Example.com": "bounce: General"}


def test_a_complaint_blocks_the_address(client, aws, key):
    _signup("ada@example.com")
    assert post(client, signed(key, complaint("ada@example.com"))).status_code == 200
    assert _blocked() == {"ada@example.com": "complaint: abuse"}


def test_a_transient_bounce_blocks_nothing(client, aws, key):
    _signup("ada@example.com")
    assert (
        post(client, signed(key, bounce("ada@example.com", kind="Transient", subtype="MailboxFull"))).status_code == 200
    )
    assert _blocked() == {}


def test_the_first_block_keeps_its_time_and_reason(client, aws, key):
    _signup("ada@example.com")
    post(client, signed(key, bounce("ada@example.com")))
    first = Signup.objects.get().email_blocked_at
    post(client, signed(key, complaint("ada@example.com")))
    row = Signup.objects.get()
    assert (row.email_blocked_at, row.email_blocked_reason) == (first, "bounce: General")


def test_a_blocked_address_gets_no_more_email(client, aws, key):
    signup = _signup("ada@example.com")
    post(client, signed(key, complaint("ada@example.com")))
    assert emails.send(signup.pk, emails.LINK) == "skipped: address blocked"
    assert mail.outbox == []


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m | {"Message": m["Message"].replace("ada@", "grace@")},  # changed after signing
        lambda m: m | {"Signature": base64.b64encode(b"\0" * 256).decode()},  # someone else's signature
        lambda m: {k: v for k, v in m.items() if k != "Signature"},  # unsigned
        lambda m: m | {"Signature": "not base64!"},
        lambda m: m | {"SignatureVersion": "3"},
        lambda m: m | {"Type": "SubscriptionConfirmation"},
    ],
)
def test_an_unsigned_or_tampered_message_is_refused_and_changes_nothing(client, aws, key, tamper):
    _signup("grace@example.com")
    response = post(client, tamper(signed(key, bounce("ada@example.com"))))
    assert response.status_code == 403
    assert _blocked() == {}


def test_a_message_signed_by_another_key_is_refused(client, aws, key):
    _signup("ada@example.com")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert post(client, signed(stranger, bounce("ada@example.com"))).status_code == 403
    assert _blocked() == {}


def test_another_topic_is_refused_before_any_fetch(client, aws, key):
    _signup("ada@example.com")
    other = signed(key, bounce("ada@example.com") | {"TopicArn": TOPIC.replace("ses-events", "theirs")})
    assert post(client, other).status_code == 403
    assert _blocked() == {} and aws.seen == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://evil.example/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
        "https://my-bucket.s3.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/other/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",  # another region than the topic's
        "https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",  # not the topic's partition
        "https://sns.us-east-1.amazonaws.com:abc/SimpleNotificationService-abc.pem",  # non-numeric port: was a 500
        "https://sns.us-east-1.amazonaws.com:99999/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:/SimpleNotificationService-abc.pem",
        "https://[sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#x",
        "",
    ],
)
def test_a_certificate_off_the_sns_hosts_is_never_fetched(client, aws, key, cert_url):
    _signup("ada@example.com")
    assert post(client, signed(key, bounce("ada@example.com") | {"SigningCertURL": cert_url})).status_code == 403
    assert _blocked() == {} and aws.seen == []


def test_the_certificate_is_fetched_once_with_the_sns_host(client, aws, key):
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        _signup(address)
        assert post(client, signed(key, bounce(address))).status_code == 200
    assert len(_blocked()) == 3
    assert aws.seen == [("sns.us-east-1.amazonaws.com", "/SimpleNotificationService-0123456789abcdef.pem")]


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"Type": "Notification"}', b"\xff\xfe", json.dumps({"Type": 1}).encode()]
)
def test_garbage_gets_a_4xx_never_a_5xx(client, aws, body):
    assert post(client, body).status_code == 403


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_without_a_configured_topic_everything_is_refused(client, aws, key, settings):
    settings.SES_EVENTS_TOPIC_ARN = ""
    _signup("ada@example.com")
    assert post(client, signed(key, bounce("ada@example.com"))).status_code == 403
    assert _blocked() == {}


def test_a_verified_event_we_do_not_understand_is_acknowledged(client, aws, key):
    _signup("ada@example.com")
    for message in (
        "Successfully validated SNS topic for Amazon SES event publishing.",
        '{"eventType": "Bounce"}',
        '{"eventType": "Delivery", "delivery": {}}',
        '{"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}',
    ):
        assert post(client, signed(key, {"Type": "Notification", "Message": message})).status_code == 200
    assert _blocked() == {}


def test_the_subscription_is_confirmed_through_its_subscribe_url(client, aws, key):
    message = {"Type": "SubscriptionConfirmation", "Token": "tok", "SubscribeURL": SUBSCRIBE_URL,
               "Message": "You have chosen to subscribe to the topic."}  # fmt: skip
    assert post(client, signed(key, message)).status_code == 200
    host, path = aws.seen[-1]
    assert host == "sns.us-east-1.amazonaws.com" and path.startswith("/?Action=ConfirmSubscription&TopicArn=")


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://evil.example/?Action=ConfirmSubscription&TopicArn=" + quote(TOPIC),
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&TopicArn=" + quote(TOPIC),
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:x",
    ],
)
def test_a_subscribe_url_elsewhere_is_not_followed(client, aws, key, subscribe_url):
    message = {"Type": "SubscriptionConfirmation", "Token": "tok", "SubscribeURL": subscribe_url, "Message": "m"}
    assert post(client, signed(key, message)).status_code == 403
    assert [path for _, path in aws.seen if not path.endswith(".pem")] == []


def test_staff_see_why_and_can_list_blocked_addresses(client, aws, key, staff_client):
    blocked, fine = _signup("ada@example.com"), _signup("grace@example.com")
    post(client, signed(key, complaint("ada@example.com")))
    page = staff_client.get(f"/admin/users/signup/{blocked.pk}/change/").content.decode()
    assert "complaint: abuse" in page
    listing = staff_client.get("/admin/users/signup/?email_blocked=yes").content.decode()
    assert "ada@example.com" in listing and "grace@example.com" not in listing
    assert fine.email in staff_client.get("/admin/users/signup/?email_blocked=no").content.decode()


def test_moto_sns_delivers_a_signed_bounce_that_blocks_the_address(moto_server, live_server, settings):
    """Real SNS (moto): it signs with its own key (SignatureVersion 2) and POSTs to our endpoint over HTTP;
    the webhook fetches moto's certificate through AWS_ENDPOINT_URL with the SNS host, as from AWS."""
    import boto3

    client = boto3.client("sns", endpoint_url=moto_server.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    topic = client.create_topic(Name="ses-events-moto")["TopicArn"]
    client.subscribe(TopicArn=topic, Protocol="http", Endpoint=live_server.url + URL)
    settings.AWS_ENDPOINT_URL, settings.SES_EVENTS_TOPIC_ARN = moto_server.url, topic
    sns.clear_cache()
    _signup("ada@example.com")
    client.publish(TopicArn=topic, Message=bounce("ada@example.com")["Message"])
    assert _blocked() == {"ada@example.com": "bounce: General"}
    # The same delivery to an endpoint expecting another topic is refused: nothing more is blocked.
    settings.SES_EVENTS_TOPIC_ARN = TOPIC
    _signup("grace@example.com")
    client.publish(TopicArn=topic, Message=bounce("grace@example.com")["Message"])
    assert _blocked() == {"ada@example.com": "bounce: General"}
    sns.clear_cache()


def test_sending_through_ses_without_the_events_topic_is_a_deploy_warning(settings):
    from users.checks import check_ses_events

    settings.EMAIL_PROVIDER, settings.SES_EVENTS_TOPIC_ARN = "ses", ""
    assert [w.id for w in check_ses_events(None)] == ["users.W003"]
    settings.SES_EVENTS_TOPIC_ARN = TOPIC
    assert check_ses_events(None) == []


# --- issue 23: version 2 only, freshness, replays, 503 for what a retry may fix --------------------------
def test_a_signature_version_1_message_is_refused(client, aws, key):
    _signup("ada@example.com")
    response = post(client, signed(key, bounce("ada@example.com"), version="1"))  # a genuine SHA1 signature
    assert response.status_code == 403
    assert _blocked() == {} and aws.seen == []


@pytest.mark.parametrize("offset", [timedelta(hours=-1, seconds=-5), timedelta(minutes=6)], ids=["old", "future"])
def test_a_message_out_of_its_time_is_refused(client, aws, key, offset):
    _signup("ada@example.com")
    assert post(client, signed(key, bounce("ada@example.com") | {"Timestamp": now_stamp(offset)})).status_code == 403
    assert _blocked() == {}


def test_a_message_just_inside_the_hour_is_accepted(client, aws, key):
    _signup("ada@example.com")
    stamp = now_stamp(timedelta(minutes=-59))
    assert post(client, signed(key, bounce("ada@example.com") | {"Timestamp": stamp})).status_code == 200
    assert len(_blocked()) == 1


def test_a_replayed_message_changes_nothing_twice(client, aws, key):
    _signup("ada@example.com")
    message = signed(key, bounce("ada@example.com"))
    first = post(client, message)
    assert (first.status_code, first.content) == (200, b"ok 1")
    Signup.objects.update(email_blocked_at=None, email_blocked_reason="")  # staff unblock the address
    again = post(client, message)  # the same signed message, replayed (or SNS delivering it twice)
    assert (again.status_code, again.content) == (200, b"duplicate")
    assert _blocked() == {}  # the unblock stands


def test_a_temporary_certificate_failure_is_a_503_and_the_retry_succeeds(client, aws, key):
    _signup("ada@example.com")
    message = signed(key, bounce("ada@example.com"))
    aws.failures = 1  # the certificate host answers 503 once
    first = post(client, message)
    assert first.status_code == 503 and first["Retry-After"]
    assert _blocked() == {}
    retry = post(client, message)  # SNS delivers the same message again
    assert retry.status_code == 200
    assert _blocked() == {"ada@example.com": "bounce: General"}


def test_a_certificate_fetch_timeout_is_a_503(client, aws, key, monkeypatch):
    monkeypatch.setattr(sns, "TIMEOUT", (0.5, 0.5))
    aws.slow = 2.0
    _signup("ada@example.com")
    slow_url = CERT_URL.replace("0123456789abcdef", "slow0")
    assert post(client, signed(key, bounce("ada@example.com") | {"SigningCertURL": slow_url})).status_code == 503
    assert _blocked() == {}


def test_the_database_unavailable_is_a_503_and_nothing_is_remembered(client, aws, key, monkeypatch):
    from django.db import OperationalError

    from users import webhooks

    _signup("ada@example.com")
    message = signed(key, bounce("ada@example.com"))

    def down(*args):
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(webhooks, "block", down)
    assert post(client, message).status_code == 503
    monkeypatch.undo()
    assert post(client, message).status_code == 200  # the id was not kept: the retry applies it
    assert len(_blocked()) == 1


def test_a_forged_slow_certificate_url_does_not_hold_up_a_genuine_message(client, aws, key, monkeypatch):
    monkeypatch.setattr(sns, "TIMEOUT", (2.0, 3.0))
    aws.slow = 2.5
    _signup("ada@example.com")
    forged = signed(
        key, bounce("grace@example.com") | {"SigningCertURL": CERT_URL.replace("0123456789abcdef", "slow1")}
    )
    from django.test import Client

    thread = threading.Thread(target=lambda: post(Client(), forged))
    thread.start()
    time.sleep(0.3)  # the forged message's fetch is under way
    started = time.monotonic()
    response = post(client, signed(key, bounce("ada@example.com")))  # its certificate is not cached yet
    took = time.monotonic() - started
    thread.join(10)
    assert response.status_code == 200 and took < 1.5, took
    assert _blocked() == {"ada@example.com": "bounce: General"}


@pytest.mark.parametrize(
    ("arn", "host"),
    [
        ("arn:aws:sns:eu-west-1:123456789012:t", "sns.eu-west-1.amazonaws.com"),
        ("arn:aws-cn:sns:cn-north-1:123456789012:t", "sns.cn-north-1.amazonaws.com.cn"),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t", "sns.us-gov-west-1.amazonaws.com"),
    ],
)
def test_the_certificate_host_is_the_topic_regions(arn, host):
    assert sns.sns_host(arn) == host
