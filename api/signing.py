"""Standard Webhooks 1.0 signatures: webhook-signature is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

The key is the base64-decoded part of the `whsec_` secret. During a rotation both the new and the previous
secret sign (space-separated), so a receiver holding either verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three Standard Webhooks headers, one signature per secret."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
    }
