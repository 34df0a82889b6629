"""Fixed-window rate limits counted in the cache (Redis): one INCR per hit.

Fails open: while Redis is unreachable every hit is allowed. The outage is logged once per change of
state by the cache's circuit breaker (project/cache.py), not once per request here.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.shortcuts import render

from project.http import client_ip

logger = logging.getLogger("project.ratelimit")


def hit(scope: str, key: str, limit: int, window: int) -> tuple[bool, int]:
    """Count one hit; return (allowed, seconds until the window resets)."""
    now = int(time.time())
    window_start = now - now % window
    cache_key = f"rl:{scope}:{key}:{window_start}"
    retry_after = window_start + window - now
    try:
        count = 1 if cache.add(cache_key, 1, timeout=window + 5) else cache.incr(cache_key)
    except ValueError:  # the key expired between add and incr: a new window
        count = 1
    except Exception as exc:  # not an outage (those are misses, see above): something to look at
        logger.warning("rate limit %s not enforced: %s", scope, exc.__class__.__name__)
        return True, 0
    if count is None:  # django-redis answered None: Redis is unreachable or being skipped
        return True, 0
    return count <= limit, retry_after


def refuse_client(request, scope: str, rate: tuple[int, int], template: str, ctx: dict, ip: str | None = None):
    """Count one hit for this request's client IP; over `rate` return the 429 page (Retry-After), else None.

    `ip`: the caller's client_ip(request), when it has it already.
    """
    limit, window = rate
    allowed, retry_after = hit(scope, (ip or client_ip(request)) or "unknown", limit, window)
    if allowed:
        return None
    logger.warning("%s: rate limit reached for a client, refused", scope)
    ctx = {**ctx, "rate_limited": True, "retry_minutes": max(1, -(-retry_after // 60))}
    response = render(request, template, ctx, status=429)
    response["Retry-After"] = str(retry_after)
    return response
