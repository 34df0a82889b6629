"""Database router: writes to the primary, reads to a replica when that cannot show stale data.

A read goes to the primary when
- the code asked for it (``use_primary()``),
- the primary connection is inside ``transaction.atomic()`` (a replica cannot see the open transaction),
- the current request has already written (read-your-writes within a request).
Otherwise it goes to a randomly chosen replica, or to the primary when none is configured.
"""

from __future__ import annotations

import random

from django.db import DEFAULT_DB_ALIAS, connections

from project.db import state


def replica_aliases() -> list[str]:
    """Return the configured replica aliases (every database but the primary)."""
    return [alias for alias in connections.settings if alias != DEFAULT_DB_ALIAS]


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        if state.primary_forced() or state.has_written() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        replicas = replica_aliases()
        return random.choice(replicas) if replicas else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        state.mark_written()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS  # replicas receive the schema by replication
