"""/api/v1/events: the events the webhooks carry, for those who poll (`after` = the last id seen).

Ids come from a sequence, so an event whose transaction commits late may have a smaller id than one already
visible; the feed shows only events older than SETTLE (longer than any transaction that writes one: the
app role's statement timeout), so a poller that keeps `after` never skips one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import BaseModel

from api import keys
from api.models import Event
from api.problems import ERROR_CODES, Problem

routes = Router(tags=["events"])
SETTLE = timedelta(seconds=10)


class EventOut(BaseModel):
    id: int
    type: str
    signup_id: int
    timestamp: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next: int = Field(description="Pass as `after` for the next page (the last id here, or `after` itself).")


class EventFilters(Schema):
    after: int = Field(0, ge=0, le=2**63 - 1)
    limit: int = Field(100, ge=1, le=1000)


@routes.get("", response={200: EventPage, ERROR_CODES: Problem}, summary="Events after a cursor, oldest first")
def list_events(request, filters: Query[EventFilters]):
    keys.require(request, "events:read")
    rows = Event.objects.filter(id__gt=filters.after, at__lte=timezone.now() - SETTLE).order_by("id")
    items = [{"id": e.pk, "type": e.type, "signup_id": e.signup_id, "timestamp": e.at} for e in rows[: filters.limit]]
    return {"items": items, "next": items[-1]["id"] if items else filters.after}
