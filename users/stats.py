"""The public count of confirmed people, cached in Redis and refreshed by one caller at a time.

The rules, in order:
1. Two keys: the count (kept STALE_SECONDS) and a marker that it is fresh (kept COUNT_TTL_SECONDS). One
   MGET reads both. Fresh: the count is served, no query.
2. Stale or missing: a caller takes the refresh lock (SET NX, LOCK_SECONDS) and counts on a replica; it
   stores the count, marks it fresh and drops the lock. So the count is exact again at most
   COUNT_TTL_SECONDS (plus one count) after any change, and never counted by two callers at once.
3. Anyone else while that runs: the stale count if there is one, at once; with none (a cold cache) they
   wait for the refresher's result, polling every WAIT_STEP, up to LOCK_SECONDS (a refresher that died
   leaves a lock that expires: the next waiter takes it over). 50 visitors at once run one COUNT.
4. Redis unreachable (the lock cannot be taken or refused): count here, as without a cache; the breaker
   (project/cache.py) makes each of those calls a miss at once.
Only contactable people count (Signup.objects.contactable(): confirmed, consenting, not withdrawn, bounced or erased):
confirming, withdrawing and erasing drop both keys when their transaction commits. A signup changes
nothing here, so it touches neither key.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from users.models import Signup

logger = logging.getLogger("users")

COUNT_KEY = "users:signup-count"
FRESH_KEY = "users:signup-count:fresh"
LOCK_KEY = "users:signup-count:refresh"
COUNT_TTL_SECONDS = 60  # the count is exact again at most this long after a change
STALE_SECONDS = 3600  # how long a stale count may still be shown while one caller refreshes it
LOCK_SECONDS = 10  # longer than a count may take (statement_timeout 5 s): a dead refresher's lock expires
WAIT_STEP = 0.05  # seconds between looks for the refresher's result (cold cache only)


def signup_count() -> int:
    """Return the number of confirmed people: cached, stale while one caller refreshes it."""
    cached = cache.get_many([COUNT_KEY, FRESH_KEY])
    if FRESH_KEY in cached and COUNT_KEY in cached:
        return cached[COUNT_KEY]
    deadline = time.monotonic() + LOCK_SECONDS
    while True:
        won = cache.add(LOCK_KEY, 1, LOCK_SECONDS)
        if won is None:  # Redis unreachable (errors are misses): no lock to share, count here
            return _count()
        if won:
            return _refresh()
        if COUNT_KEY in cached:
            return cached[COUNT_KEY]  # stale, while the lock holder counts
        if time.monotonic() > deadline:
            logger.warning("signup count: no refresh within %s s, counting here", LOCK_SECONDS)
            return _count()
        time.sleep(WAIT_STEP)
        cached = cache.get_many([COUNT_KEY])
        if COUNT_KEY in cached:
            return cached[COUNT_KEY]


def _count() -> int:
    return Signup.objects.contactable().count()


def _refresh() -> int:
    """Count and store, holding the lock; unless a refresh that ended a moment ago already did."""
    try:
        cached = cache.get_many([COUNT_KEY, FRESH_KEY])
        if FRESH_KEY in cached and COUNT_KEY in cached:
            return cached[COUNT_KEY]
        count = _count()
        cache.set(COUNT_KEY, count, STALE_SECONDS)
        cache.set(FRESH_KEY, 1, COUNT_TTL_SECONDS)
        return count
    finally:
        cache.delete(LOCK_KEY)


TOPIC_COUNT_KEY = "users:topic-count:{}"


def topic_count(topic_id: int) -> int:
    """Return a topic's contactable members for the landing page (/?topic=<key>), cached COUNT_TTL_SECONDS.

    Simpler than the total's rules above (no stale serving, no lock): only a page asking for a topic pays it,
    and a miss is one indexed count of that topic's confirmed memberships.
    """
    rows = Signup.objects.contactable().filter(memberships__topic_id=topic_id, memberships__confirmed_at__isnull=False,
                                               memberships__withdrawn_at__isnull=True)  # fmt: skip
    return cache.get_or_set(TOPIC_COUNT_KEY.format(topic_id), rows.count, COUNT_TTL_SECONDS)


def invalidate_signup_count() -> None:
    cache.delete_many([COUNT_KEY, FRESH_KEY])


@receiver(post_delete, sender=Signup, dispatch_uid="users.count.deleted")
def _signup_deleted(sender, instance, using, **kwargs):
    transaction.on_commit(invalidate_signup_count, using=using)
