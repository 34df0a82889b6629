"""The person's own pages, reached by signed links in emails (no accounts)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

LINK_SCOPE = "mydata-address"


def address_key(address: str) -> str:
    """Return the rate-limit key of an address: a keyed digest, so the cache never holds the address."""
    return salted_hmac("users.selfservice.address", address.strip().lower(), algorithm="sha256").hexdigest()[:32]


def forget_address(address: str) -> None:
    """Delete the per-address counters of "send me my link" (erasure leaves nothing cached about the person)."""
    _, window = settings.LINK_RATE_LIMIT_ADDRESS
    now = int(time.time())
    start = now - now % window
    key = address_key(address)
    cache.delete_many([f"rl:{LINK_SCOPE}:{key}:{start}", f"rl:{LINK_SCOPE}:{key}:{start - window}"])
