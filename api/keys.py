"""API keys: how they look, how they are kept, how a request's key is checked.

1. A key is `sgk_` + 43 characters of base64url (256 random bits): the prefix lets secret scanners find a
   leaked one. It is shown once, when a superuser creates it in the admin; only its SHA-256 is stored.
2. A request sends it as `Authorization: Bearer sgk_...`. It is found by its first 12 characters (unique),
   then compared by hash in constant time; a revoked or expired key is refused like an unknown one (401).
3. Each key has a rate limit (API_RATE_LIMIT, counted in Redis: project/ratelimit.py; fails open).
4. last_used_at is written at most once a minute per key (not a write per call).
5. A route names the scope it needs (`require`: 403 without it), and every call that returns or changes personal
   data or the webhooks' setup writes an ApiAudit row (`audit`: key, action, filters or an id, rows), like an
   export.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from api.models import ApiAudit, ApiKey
from api.problems import ApiProblem

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


def require(request, scope: str) -> None:
    """Answer 403 unless the request's key holds `scope`."""
    if scope not in request.auth.scopes:
        raise ApiProblem(403, "Forbidden", f"This key lacks the {scope} scope.")


def audit(request, action: str, filters: dict, rows: int) -> None:
    """Record one API call: which key, what (never an address or a name), how many rows."""
    key = request.auth
    # The primary by its alias, not router.db_for_write(): that would mark the request as a browser's write and
    # cost a WAL-position query for a read-your-writes cookie no API client sends back.
    ApiAudit.objects.using(DEFAULT_DB_ALIAS).create(key_id=key.pk, key_prefix=key.prefix, action=action,
                                                    filters=filters, row_count=rows)  # fmt: skip
