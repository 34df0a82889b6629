"""Fixed-window rate limits counted in the cache (Redis): one INCR per hit. Fails open, and logs it."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

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
    except Exception as exc:
        count, problem = None, exc.__class__.__name__
    else:
        problem = "no answer"  # django-redis returns None when it swallowed (and logged) a Redis error
    if count is None:
        logger.warning("rate limit %s not enforced: cache unavailable (%s)", scope, problem)
        return True, 0
    return count <= limit, retry_after
