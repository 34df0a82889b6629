"""What a webhook (and the events feed) says about an event: built when it is sent, from the row as it is then.

Thin by default: type, timestamp, data.id. An endpoint granted signups:read also gets the person's fields
(and their topics: each with when it was chosen, confirmed and left), unless the person has been erased since:
then the payload is thin whatever the grant (nothing of them is stored with the event, so nothing of them can
be sent after the erasure).
"""

from __future__ import annotations

import json

from django.db.models import Prefetch, prefetch_related_objects

from api.models import Event
from users.models import Signup, SignupTopic

FIELDS = ["full_name", "email", "phone", "language", "consent", "consent_at", "consent_version", "created_at",
          "confirmed_at", "withdrawn_at", "email_blocked_at"]  # fmt: skip


TOPIC_FIELDS = ["chosen_at", "confirmed_at", "withdrawn_at"]


def memberships() -> Prefetch:
    """Return the prefetch a list of people needs for `person` (two queries a page, not one per person)."""
    return Prefetch("memberships", queryset=SignupTopic.objects.select_related("topic"))


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def person(signup: Signup) -> dict:
    """Return the person's fields as the API and full payloads show them."""
    data = {"id": signup.pk, "country": str(signup.country or "")}
    for name in FIELDS:
        data[name] = _iso(getattr(signup, name))
    prefetch_related_objects([signup], memberships())  # nothing to do when the caller prefetched
    data["topics"] = [
        {"key": m.topic.key, **{name: _iso(getattr(m, name)) for name in TOPIC_FIELDS}}
        for m in signup.memberships.all()
    ]
    # The fields staff added (formdef), typed as stored, and the form version they were answered on.
    data["answers"], data["form_version"] = signup.answers or {}, signup.form_version
    return data


def body(event: Event, *, full: bool, using: str) -> bytes:
    """Return the JSON body of `event` for an endpoint (full: granted signups:read)."""
    data = {"id": event.signup_id}
    if full:
        signup = Signup.objects.using(using).filter(pk=event.signup_id).first()
        if signup is not None and not signup.is_erased:
            data = person(signup)
    message = {"type": event.type, "timestamp": event.at.isoformat(), "data": data}
    return json.dumps(message, separators=(",", ":")).encode()
