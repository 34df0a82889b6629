"""Amazon SNS messages to our HTTPS endpoint: verify their signature, confirm the subscription.

Why our own ~150 lines: django-anymail's SES tracking webhook does not verify SNS signatures (it relies
on basic auth, and a malformed event makes it raise a 500); django-ses verifies only through M2Crypto,
trusts any *.amazonaws.com host (S3 buckets included) and fetches without a timeout. The rules, after
AWS's "Verifying the signatures of Amazon SNS messages":

1. The message is JSON with a known Type (Notification, SubscriptionConfirmation, UnsubscribeConfirmation).
2. Its TopicArn is the one topic we subscribed to (settings.SES_EVENTS_TOPIC_ARN); checked before anything
   is fetched, so a stranger's topic costs us no outbound request.
3. SigningCertURL is https, on a host matching settings.SNS_CERT_HOST_PATTERN (sns.<region>.amazonaws.com),
   with SNS's own path (/SimpleNotificationService-<id>.pem); anything else is refused unfetched.
4. The certificate is fetched once per URL and process (kept SNS_CERT_CACHE_SECONDS), by one thread at a
   time, with a connect/read timeout, no redirects and a size cap. With AWS_ENDPOINT_URL set (moto in
   the tests) it is fetched from that endpoint with the SNS host in the Host header, as boto3 would.
5. The signature is RSA PKCS#1 v1.5 over SNS's canonical string: SHA1 for SignatureVersion 1, SHA256 for 2.
6. A SubscriptionConfirmation is confirmed by a GET of its SubscribeURL, which must pass rule 3's host
   check and be a ConfirmSubscription of our topic; bounded the same way.
Any failure raises InvalidMessage (the view answers 4xx); nothing here logs message contents.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
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
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_PATH = re.compile(r"/SimpleNotificationService-[A-Za-z0-9]+\.pem")
MAX_CERT_BYTES = 16 * 1024  # an SNS certificate is about 2 KB
TIMEOUT = (2.0, 3.0)  # connect, read: SNS waits 15 s for our answer, so we must answer well before that

_cache: dict[str, tuple[rsa.RSAPublicKey, float]] = {}
_fetch_lock = threading.Lock()


class InvalidMessage(Exception):
    """The message is not a genuine SNS message for our topic (the text says why; no message contents)."""


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
    """Raise InvalidMessage unless `message` is signed by SNS and comes from our topic (rules 2-5)."""
    topic = settings.SES_EVENTS_TOPIC_ARN
    if not topic or message.get("TopicArn") != topic:
        raise InvalidMessage("not our topic")
    algorithm = HASHES.get(message.get("SignatureVersion", ""))
    if algorithm is None:
        raise InvalidMessage("unknown signature version")
    try:
        signature = base64.b64decode(message.get("Signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("signature is not base64") from None
    key = _public_key(_checked_url(message.get("SigningCertURL", ""), CERT_PATH))
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise InvalidMessage("bad signature") from None


def canonical(message: dict) -> bytes:
    """Return the bytes SNS signs: each present field of the type's list, "name\\nvalue\\n", in order."""
    fields = TYPES[message["Type"]]
    return "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None).encode()


def confirm_subscription(message: dict) -> None:
    """Confirm the subscription a verified SubscriptionConfirmation asks for (rule 6)."""
    url = _checked_url(message.get("SubscribeURL", ""), re.compile(r"/?"))
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [message["TopicArn"]]:
        raise InvalidMessage("SubscribeURL is not a confirmation of our topic")
    try:
        response = _get(url)
        response.close()
    except requests.RequestException:
        raise InvalidMessage("SubscribeURL unreachable") from None
    if response.status_code != 200:
        raise InvalidMessage(f"SubscribeURL answered {response.status_code}")


def _checked_url(url: str, path: re.Pattern) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or parts.port is not None
        or not re.fullmatch(settings.SNS_CERT_HOST_PATTERN, parts.hostname or "")
        or not path.fullmatch(parts.path)
    ):
        raise InvalidMessage("URL is not on an SNS host")
    return url


def _public_key(url: str) -> rsa.RSAPublicKey:
    cached = _cache.get(url)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    # One fetch at a time per process: a burst of forged URLs cannot tie up every worker thread.
    if not _fetch_lock.acquire(timeout=sum(TIMEOUT)):
        raise InvalidMessage("certificate fetch busy")
    try:
        cached = _cache.get(url)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        key = _fetch_key(url)
        if len(_cache) >= 32:
            _cache.clear()  # SNS rotates certificates rarely; a full cache means someone is trying URLs
        _cache[url] = (key, time.monotonic() + settings.SNS_CERT_CACHE_SECONDS)
        return key
    finally:
        _fetch_lock.release()


def _fetch_key(url: str) -> rsa.RSAPublicKey:
    try:
        with _get(url, stream=True) as response:
            if response.status_code != 200:
                raise InvalidMessage(f"certificate answered {response.status_code}")
            pem = response.raw.read(MAX_CERT_BYTES + 1, decode_content=True)
    except requests.RequestException:
        raise InvalidMessage("certificate unreachable") from None
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
