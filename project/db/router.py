"""Database router: writes to the primary; reads to a replica only when that cannot show stale data.

A read goes to the primary when
- its model's app is in ROUTER_PRIMARY_APPS (the login lockout must see the failure just recorded),
- the code asked for it (``use_primary()`` as a context manager or view decorator),
- the primary connection is inside ``transaction.atomic()`` (a replica cannot see the open transaction),
- the current request has already written (read-your-writes within a request),
- no replica is eligible: each is down (circuit breaker), lagging past REPLICA_MAX_LAG, not sampled
  recently, on another timeline than the primary (a sibling left behind by a promotion), or has not
  replayed the WAL position this client last wrote, on the timeline it was written on (read-your-writes
  across requests and app instances, from the signed cookie set by RoutingMiddleware).
Otherwise it goes to an eligible replica chosen at random (by REPLICA_WEIGHTS), once per request.
"""

from __future__ import annotations

import random

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from project.db import counters, state
from project.db.monitor import monitor, replica_aliases

__all__ = ["PrimaryReplicaRouter", "replica_aliases"]


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        alias = DEFAULT_DB_ALIAS if model._meta.app_label in settings.ROUTER_PRIMARY_APPS else _read_alias()
        counters.incr("reads", alias)
        return alias

    def db_for_write(self, model, **hints) -> str:
        state.mark_written()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS  # replicas receive the schema by replication


def _read_alias() -> str:
    current = state.current()
    if state.primary_forced() or current.wrote or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    chosen = current.read_alias
    if chosen is not None and (
        chosen == DEFAULT_DB_ALIAS or not monitor.eligible(chosen, current.min_lsn, min_timeline=current.min_timeline)
    ):
        return chosen
    current.read_alias = _choose_replica(current.min_lsn, current.min_timeline)
    return current.read_alias


def _choose_replica(min_lsn: int, min_timeline: int = 0) -> str:
    replicas = replica_aliases()
    if not replicas:
        return DEFAULT_DB_ALIAS
    monitor.ensure_running()
    eligible, reasons = [], []
    for alias in replicas:
        reason = monitor.eligible(alias, min_lsn, min_timeline=min_timeline)
        if reason:
            reasons.append(reason)
        else:
            eligible.append(alias)
    if eligible:
        weights = settings.REPLICA_WEIGHTS
        return random.choices(eligible, weights=[weights.get(alias, 1) for alias in eligible])[0]
    # Only behind this client by the last sample? Replay usually takes milliseconds: ask one of them.
    behind = [alias for alias, reason in zip(replicas, reasons, strict=True) if reason == "behind_client"]
    if behind:
        alias = random.choice(behind)
        if monitor.caught_up(alias, min_lsn, min_timeline):
            counters.incr("caught_up")
            return alias
    # Every replica is out: say why (the client's own pin counts apart from replica trouble).
    if "behind_client" in reasons:
        counters.incr("pins")
    else:
        counters.incr("fallbacks", reasons[0])
    return DEFAULT_DB_ALIAS
