"""Record an event in the caller's transaction: the outbox of the outgoing webhooks and the events feed.

Called by users/selfservice.py (confirmed, withdrawn), users/erasure.py (erased), users/webhooks.py (bounced);
the signup's own INSERT adds its event in the same statement (users/signup_store.py). This module imports only
the api models, so users may import it without a circle.
"""

from __future__ import annotations

from django.db import transaction

from api.models import Event


def record(event_type: str, signup_ids: int | list[int], *, using: str) -> None:
    """Write one event per signup id; must run inside the transaction that makes the change."""
    ids = [signup_ids] if isinstance(signup_ids, int) else list(signup_ids)
    if not ids:
        return
    if not transaction.get_connection(using).in_atomic_block:
        raise RuntimeError("api.events.record must run in the transaction of the change it announces")
    Event.objects.using(using).bulk_create([Event(type=event_type, signup_id=pk) for pk in ids])
