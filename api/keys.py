"""API keys: how they look, how they are kept, how a request's key is checked.

1. A key is `sgk_` + 43 characters of base64url (256 random bits): the prefix lets secret scanners find a
   leaked one. It is shown once, when a superuser creates it in the admin; only its SHA-256 is stored.
2. A request sends it as `Authorization: Bearer sgk_...`. It is found by its first 12 characters (unique),
   then compared by hash in constant time; a revoked or expired key is refused like an unknown one (401).
3. Each key has a rate limit (API_RATE_LIMIT, counted in Redis: project/ratelimit.py; fails open).
4. last_used_at is written at most once a minute per key (not a write per call).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from api.models import ApiKey

PREFIX = "sgk_"
LOOKUP = 12  # characters of the key that identify it (stored as ApiKey.prefix)
LAST_USED_EVERY = timedelta(minutes=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate() -> tuple[str, str, str]:
    """Return (key, prefix, hash) for a new key."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, key[:LOOKUP], digest(key)


def find(key: str) -> ApiKey | None:
    """Return the usable key `key` names, or None."""
    if not key.startswith(PREFIX) or len(key) > 100 or not key.isascii():
        return None
    # The primary (a revocation takes effect at once, never a lagging replica), by its alias: the router would
    # count a write and cost the request a WAL-position query for a cookie API clients never send back.
    using = DEFAULT_DB_ALIAS
    found = ApiKey.objects.using(using).filter(prefix=key[:LOOKUP]).first()
    if found is None or not hmac.compare_digest(found.hashed, digest(key)) or not found.is_usable():
        return None
    now = timezone.now()
    if found.last_used_at is None or found.last_used_at < now - LAST_USED_EVERY:
        ApiKey.objects.using(using).filter(pk=found.pk).update(last_used_at=now)
    return found
