"""The rate-limit counters that name a person: their address's (a keyed digest) and their IP's.

Self-service counts "send me my link" per address and per IP; erasure deletes the counters again, so an
erased person leaves nothing in the cache.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

LINK_SCOPE = "mydata-address"
IP_SCOPE = "mydata-ip"


def address_key(address: str) -> str:
    """Return the rate-limit key of an address: a keyed digest, so the cache never holds the address."""
    return salted_hmac("users.selfservice.address", address.strip().lower(), algorithm="sha256").hexdigest()[:32]


def forget_address(address: str, ip: str | None = None) -> None:
    """Delete the rate-limit counters naming this person: their address's (hashed) and their IP's."""
    keys = [(LINK_SCOPE, address_key(address), settings.LINK_RATE_LIMIT_ADDRESS[1])]
    if ip:
        keys += [("signup", ip, settings.SIGNUP_RATE_LIMIT[1]), (IP_SCOPE, ip, settings.LINK_RATE_LIMIT_IP[1])]
    now = int(time.time())
    doomed = []
    for scope, key, window in keys:
        start = now - now % window
        doomed += [f"rl:{scope}:{key}:{start}", f"rl:{scope}:{key}:{start - window}"]
    cache.delete_many(doomed)
