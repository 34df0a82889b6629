"""The webhook delivery threads of `manage.py worker` (users/management/commands/worker.py starts them).

Each thread runs api.delivery.run_one in a loop, with its own database connection; a database outage is
waited out. They stop when the worker's `running()` turns false (SIGTERM), finishing the request in hand; a
killed process leaves its claims to run out (the lease) and be taken again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, router

from api import delivery
from api.models import Delivery

logger = logging.getLogger("api.delivery")


def run_until_idle(held: Callable[[], bool] = lambda: False) -> int:
    """Deliver everything due now, in this thread (`worker --batch`); return how many steps did work."""
    done = 0
    while not held() and delivery.run_one():
        done += 1
    return done


class DeliveryThreads:
    def __init__(self, count: int, running: Callable[[], bool], interval: float = 1.0,
                 held: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        # `held`: the worker's answer to "is delivery on hold?" (after a database restore, until the erasures
        # are applied again, nothing about a person may leave: users.tombstones.restore_pending).
        self.running, self.interval, self.held = running, interval, held
        self.threads = [threading.Thread(target=self._loop, name=f"webhooks-{n}", daemon=True) for n in range(count)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        if self.threads:
            logger.info("webhook delivery: %d thread(s) started", len(self.threads))

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0))

    def _loop(self) -> None:
        pruned_at = 0.0  # the first thread prunes at start, then every QUEUE_PRUNE_SECONDS
        try:
            while self.running():
                close_old_connections()
                try:
                    if threading.current_thread() is self.threads[0] and time.monotonic() - pruned_at > (
                        settings.QUEUE_PRUNE_SECONDS if pruned_at else 0
                    ):
                        pruned_at = time.monotonic()
                        gone = delivery.prune(settings.QUEUE_KEEP_DAYS, router.db_for_write(Delivery))
                        logger.info("webhook delivery: %d old row(s) pruned", gone)
                    busy = not self.held() and delivery.run_one()
                except DatabaseError as exc:
                    logger.warning("webhook delivery: database unavailable (%s), trying again", type(exc).__name__)
                    connections.close_all()
                    busy = False
                if not busy:
                    self._sleep(self.interval)
        finally:
            connections.close_all()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
