"""Amazon SNS messages to our HTTPS endpoint: verify their signature, confirm the subscription.

Why our own ~200 lines: django-anymail's SES tracking webhook does not verify SNS signatures (it relies
on basic auth, and a malformed event makes it raise a 500); django-ses verifies only through M2Crypto,
trusts any *.amazonaws.com host (S3 buckets included) and fetches without a timeout. The rules, after
AWS's "Verifying the signatures of Amazon SNS messages":

1. The message is JSON with a known Type (Notification, SubscriptionConfirmation, UnsubscribeConfirmation).
2. Its TopicArn is the one topic we subscribed to (settings.SES_EVENTS_TOPIC_ARN); checked before anything
   is fetched, so a stranger's topic costs us no outbound request.
3. SignatureVersion is 2 (RSA with SHA256; the topic sets it, infra/terraform/ses.tf); 1 (SHA1) is refused.
4. Timestamp is within SNS_MAX_AGE_SECONDS (an hour) of now, and not more than 5 minutes ahead: an old
   message cannot be replayed once its MessageId is forgotten (users/webhooks.py keeps them longer).
5. SigningCertURL is https on exactly sns.<the topic's region>.amazonaws.com (.com.cn in the China partition),
   no user, no port, SNS's own path (/SimpleNotificationService-<id>.pem); anything else, an unparseable URL
   included, is refused unfetched.
6. The certificate is fetched once per URL and process (kept SNS_CERT_CACHE_SECONDS): a cached certificate
   needs no lock at all; a fetch holds only its own URL's lock, and at most FETCHES fetches run at once,
   each with a connect/read timeout, no redirects and a size cap, so one slow or forged URL cannot hold up
   the genuine one. With AWS_ENDPOINT_URL set (moto in the tests) it is fetched from that endpoint with the
   SNS host in the Host header, as boto3 would.
7. The signature is RSA PKCS#1 v1.5 with SHA256 over SNS's canonical string.
8. A SubscriptionConfirmation is confirmed by a GET of its SubscribeURL, which must pass rule 5's host
   check and be a ConfirmSubscription of our topic; bounded the same way.
A forgery raises InvalidMessage (the view answers 403, which SNS never retries: only forgeries get it).
What may pass on a retry (a certificate or SubscribeURL fetch that timed out, a 5xx, every fetch slot busy)
raises Unavailable (the view answers 503: SNS retries per the topic's delivery policy). Nothing here logs
message contents.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

TYPES = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SIGNATURE_VERSION = "2"  # SHA256; version 1 (SHA1) is refused
TOPIC_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):sns:([a-z]{2}(-[a-z]+)+-\d):\d{12}:[\w-]{1,256}")
CERT_PATH = re.compile(r"/SimpleNotificationService-[A-Za-z0-9]+\.pem")
MAX_CERT_BYTES = 16 * 1024  # an SNS certificate is about 2 KB
TIMEOUT = (2.0, 3.0)  # connect, read: SNS waits 15 s for our answer, so we must answer well before that
FUTURE_SKEW = timedelta(minutes=5)  # clocks differ a little; a message from further ahead is not SNS's
FETCHES = 4  # certificate fetches at once per process; more wait at most a connect timeout, then 503

_cache: dict[str, tuple[rsa.RSAPublicKey, float]] = {}
_url_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()
_fetch_slots = threading.BoundedSemaphore(FETCHES)


class InvalidMessage(Exception):
    """The message is not a genuine SNS message for our topic (the text says why; no message contents)."""


class Unavailable(Exception):
    """The message could not be checked now (a fetch timed out or failed): SNS should send it again."""


def parse(body: bytes) -> dict:
    """Return the SNS message in `body`, or raise InvalidMessage."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidMessage("not JSON") from None
    if not isinstance(message, dict) or message.get("Type") not in TYPES:
        raise InvalidMessage("not an SNS message")
    if not all(isinstance(value, str) for value in message.values() if not isinstance(value, dict)):
        raise InvalidMessage("malformed fields")
    return message


def verify(message: dict) -> None:
    """Raise InvalidMessage unless `message` is fresh, signed by SNS and from our topic (rules 2-7)."""
    topic = settings.SES_EVENTS_TOPIC_ARN
    if not topic or message.get("TopicArn") != topic:
        raise InvalidMessage("not our topic")
    if message.get("SignatureVersion") != SIGNATURE_VERSION:
        raise InvalidMessage("signature version is not 2")
    if not message.get("MessageId"):
        raise InvalidMessage("no MessageId")
    _check_fresh(message.get("Timestamp", ""))
    try:
        signature = base64.b64decode(message.get("Signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("signature is not base64") from None
    key = _public_key(_checked_url(message.get("SigningCertURL", ""), CERT_PATH, topic))
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise InvalidMessage("bad signature") from None


def sns_host(topic_arn: str) -> str:
    """Return the one host SNS serves this topic's certificates and SubscribeURLs from."""
    match = TOPIC_ARN.fullmatch(topic_arn)
    if not match:
        raise InvalidMessage("topic ARN unreadable")
    partition, region = match.group(1), match.group(2)
    return f"sns.{region}.amazonaws.com" + (".cn" if partition == "aws-cn" else "")


def _check_fresh(stamp: str) -> None:
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMessage("timestamp unreadable") from None
    if at.tzinfo is None:
        raise InvalidMessage("timestamp without a zone")
    now = datetime.now(UTC)
    if at < now - timedelta(seconds=settings.SNS_MAX_AGE_SECONDS) or at > now + FUTURE_SKEW:
        raise InvalidMessage("timestamp out of range")


def canonical(message: dict) -> bytes:
    """Return the bytes SNS signs: each present field of the type's list, "name\\nvalue\\n", in order."""
    fields = TYPES[message["Type"]]
    return "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None).encode()


def confirm_subscription(message: dict) -> None:
    """Confirm the subscription a verified SubscriptionConfirmation asks for (rule 6)."""
    url = _checked_url(message.get("SubscribeURL", ""), re.compile(r"/?"), message["TopicArn"])
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [message["TopicArn"]]:
        raise InvalidMessage("SubscribeURL is not a confirmation of our topic")
    try:
        response = _get(url)
        response.close()
    except requests.RequestException:
        raise Unavailable("SubscribeURL unreachable") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise Unavailable(f"SubscribeURL answered {response.status_code}")
    if response.status_code != 200:
        raise InvalidMessage(f"SubscribeURL answered {response.status_code}")


def _checked_url(url: str, path: re.Pattern, topic_arn: str) -> str:
    host = sns_host(topic_arn)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise InvalidMessage("URL unreadable") from None
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or port is not None
        or parts.hostname != host
        or parts.netloc != host
        or not path.fullmatch(parts.path)
        or parts.fragment
    ):
        raise InvalidMessage("URL is not on the topic's SNS host")
    return url


def _public_key(url: str) -> rsa.RSAPublicKey:
    cached = _cache.get(url)
    if cached and cached[1] > time.monotonic():
        return cached[0]  # the usual case: no lock at all
    with _locks_lock:
        if len(_url_locks) >= 32 and url not in _url_locks:
            _url_locks.clear()  # only URLs on the topic's SNS host get here; many means someone is trying them
        lock = _url_locks.setdefault(url, threading.Lock())
    # One fetch per URL (its other callers wait for it and use its result), FETCHES at once in all.
    if not lock.acquire(timeout=sum(TIMEOUT)):
        raise Unavailable("certificate fetch busy")
    try:
        cached = _cache.get(url)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        if not _fetch_slots.acquire(timeout=TIMEOUT[0]):
            raise Unavailable("every certificate fetch slot busy")
        try:
            key = _fetch_key(url)
        finally:
            _fetch_slots.release()
        if len(_cache) >= 32:
            _cache.clear()
        _cache[url] = (key, time.monotonic() + settings.SNS_CERT_CACHE_SECONDS)
        return key
    finally:
        lock.release()


def _fetch_key(url: str) -> rsa.RSAPublicKey:
    try:
        with _get(url, stream=True) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise Unavailable(f"certificate answered {response.status_code}")
            if response.status_code != 200:
                raise InvalidMessage(f"certificate answered {response.status_code}")
            pem = response.raw.read(MAX_CERT_BYTES + 1, decode_content=True)
    except (requests.RequestException, OSError):  # timeouts, refused connections, resets mid-body
        raise Unavailable("certificate unreachable") from None
    if len(pem) > MAX_CERT_BYTES:
        raise InvalidMessage("certificate too large")
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise InvalidMessage("certificate unreadable") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidMessage("certificate key is not RSA")
    return key


def _get(url: str, **kwargs) -> requests.Response:
    """GET an SNS URL with bounded waits and no redirects, through AWS_ENDPOINT_URL when that is set."""
    headers = {}
    endpoint = settings.AWS_ENDPOINT_URL
    if endpoint:
        parts = urlsplit(url)
        region = parts.hostname.split(".")[1]
        # A stand-in such as moto serves every service on one port and routes an unsigned GET by the SigV4
        # credential scope: name SNS and the region there (never sent to AWS itself, which needs no header).
        headers["Host"] = parts.hostname
        headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential=anonymous/20000101/{region}/sns/aws4_request"
        url = endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    return requests.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def clear_cache() -> None:
    """Forget fetched certificates (tests)."""
    _cache.clear()
