"""/api/v1/webhooks/endpoints (scope webhooks:manage): the webhook endpoints, managed as the admin manages them.

1. List, create, read, update (url, description, events, enabled, signups_read) and delete, with the admin's
   rules: the SSRF guard when the URL is saved (api/ssrf.py: 422), and enabling a disabled endpoint clears why
   it was disabled and its failing streak.
2. Granting signups:read (the person's fields in the payloads) needs a key that holds signups:read itself:
   otherwise a key could read people by pointing an endpoint at its owner's server.
3. The secret is in an answer twice only: when the endpoint is created and when its secret is rotated (the
   old one keeps signing for ROTATION_OVERLAP, as the admin's action does). Never in a list or a read.
4. An endpoint's deliveries, newest event first, in keyset pages on the (endpoint, event) unique index; one
   delivery with its attempts; replay (the same webhook-id; 409 while it is being sent).
5. Every call is audited (api/keys.py audit) with ids only, never a URL (a receiver's token may be in it).
6. Read and written on the primary by its alias: an API client carries no read-your-writes cookie, so a read
   right after a change must not meet a lagging replica (the tables are small).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.http import Http404
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import BaseModel

from api import delivery, keys
from api.models import EVENT_TYPES, Delivery, Endpoint
from api.problems import ERROR_CODES, ApiProblem, Problem

routes = Router(tags=["webhooks"])

PRIMARY = DEFAULT_DB_ALIAS
SCOPE = "webhooks:manage"
MAX_ID = 2**63 - 1
EndpointId = Path(..., ge=1, le=MAX_ID, description="The endpoint's id.")
DeliveryId = Path(..., ge=1, le=MAX_ID, description="The delivery's id.")
EventType = Literal[tuple(EVENT_TYPES)]
MAX_ATTEMPTS_SHOWN = 100


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    events: list[str] = Field(description="The event types it receives; empty: every type.")
    enabled: bool
    signups_read: bool = Field(description="Granted signups:read: its payloads carry the person's fields.")
    disabled_reason: str = Field(description="Why the worker disabled it (410 Gone, failing for days); else empty.")
    failing_since: datetime | None
    previous_secret_until: datetime | None = Field(description="Until then the secret before the last rotation "
                                                               "signs too.")  # fmt: skip
    created_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_…: shown in this answer only. Keep it now; rotate to get a new one.")


class EndpointList(BaseModel):
    items: list[EndpointOut]


class EndpointIn(BaseModel):  # plain pydantic: ninja's Schema would also take a JSON array or a number as a body
    url: str = Field(max_length=2000, description="https://…; its host must resolve to public addresses.")
    description: str = Field("", max_length=200)
    events: list[EventType] = Field([], max_length=len(EVENT_TYPES), description="Empty: every event type.")
    enabled: bool = True
    signups_read: bool = Field(False, description="Grant signups:read (the key needs that scope too).")


class EndpointChange(BaseModel):  # plain pydantic, as EndpointIn: with every field optional, [] would pass
    """Only the fields sent change."""

    url: str = Field(None, max_length=2000)
    description: str = Field(None, max_length=200)
    events: list[EventType] = Field(None, max_length=len(EVENT_TYPES))
    enabled: bool = None
    signups_read: bool = None


class DeliveryOut(BaseModel):
    id: int
    event_id: int = Field(description="The message id is msg_<event_id> (webhook-id).")
    event_type: str
    signup_id: int
    status: Literal["pending", "running", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next: int | None = Field(None, description="Pass as `before` for the next page; null on the last page.")


class AttemptOut(BaseModel):
    at: datetime
    latency_ms: int
    status_code: int | None
    error: str = Field(description="The exception's class (a timeout, a refused address); else empty.")
    response_excerpt: str = Field(description="The receiver's answer, cut to 200 characters.")


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut] = Field(description="Newest first (up to 100).")


class DeliveryFilters(Schema):
    before: int | None = Field(None, ge=1, le=MAX_ID, description="A page's `next`: deliveries of older events.")
    limit: int = Field(100, ge=1, le=500)
    status: Literal["pending", "running", "succeeded", "failed"] | None = None


class Queued(Schema):
    status: str = "queued"


def _endpoint(request, pk: int) -> Endpoint:
    keys.require(request, SCOPE)
    found = Endpoint.objects.using(PRIMARY).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def _out(endpoint: Endpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description,
            "events": endpoint.event_types, "enabled": endpoint.enabled, "signups_read": endpoint.full_payload,
            "disabled_reason": endpoint.disabled_reason, "failing_since": endpoint.failing_since,
            "previous_secret_until": endpoint.previous_secret_until, "created_at": endpoint.created_at}  # fmt: skip


def _delivery_out(row: Delivery) -> dict:
    return {"id": row.pk, "event_id": row.event_id, "event_type": row.event.type, "signup_id": row.event.signup_id,
            "status": row.status, "attempts": row.attempts, "next_attempt_at": row.next_attempt_at,
            "last_status_code": row.last_status_code, "created_at": row.created_at,
            "delivered_at": row.delivered_at}  # fmt: skip


def _storable(text: str) -> bool:
    """Say whether PostgreSQL can store `text` (JSON may carry a NUL or a lone surrogate; UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _apply(request, endpoint: Endpoint, changes: dict) -> list[str]:
    """Set `changes` on `endpoint` as the admin would and check it (SSRF guard); return the model fields changed."""
    if changes.get("signups_read"):
        keys.require(request, "signups:read")
    names = {"url": "url", "description": "description", "events": "event_types", "enabled": "enabled",
             "signups_read": "full_payload"}  # fmt: skip
    if not all(_storable(v) for v in changes.values() if isinstance(v, str)):
        raise ApiProblem(422, "Invalid endpoint", "Text may not hold NUL characters or lone surrogates.")
    if "events" in changes:
        changes["events"] = list(dict.fromkeys(changes["events"]))
    fields, was_enabled = [names[name] for name in changes], endpoint.enabled
    for name, value in changes.items():
        setattr(endpoint, names[name], value)
    if changes.get("enabled") and not was_enabled:
        endpoint.disabled_reason, endpoint.failing_since = "", None  # a fresh start, as in the admin
        fields += ["disabled_reason", "failing_since"]
    try:
        endpoint.clean_fields(exclude=[f.name for f in Endpoint._meta.fields if f.name not in ("url", "description")])
        if "url" in changes:
            endpoint.clean()  # the SSRF guard: resolves the host (bounded), only once the URL is well formed
    except ValidationError as exc:
        errors = [{"loc": ["body", name], "msg": str(m)} for name, ms in exc.message_dict.items() for m in ms]
        raise ApiProblem(422, "Invalid endpoint", "The endpoint cannot be saved.", errors=errors) from exc
    return fields


@routes.get("/endpoints", response={200: EndpointList, ERROR_CODES: Problem}, summary="List webhook endpoints")
def list_endpoints(request):
    keys.require(request, SCOPE)
    items = [_out(e) for e in Endpoint.objects.using(PRIMARY).order_by("id")]
    keys.audit(request, "endpoints.list", {}, len(items))
    return {"items": items}


@routes.post("/endpoints", response={201: EndpointWithSecret, ERROR_CODES: Problem}, summary="Add an endpoint")
def create_endpoint(request, data: EndpointIn):
    keys.require(request, SCOPE)
    endpoint = Endpoint()
    _apply(request, endpoint, data.model_dump())
    with transaction.atomic(using=PRIMARY):
        endpoint.save(using=PRIMARY)
        keys.audit(request, "endpoint.create", {"id": endpoint.pk}, 1)
    return Status(201, {**_out(endpoint), "secret": endpoint.secret})


@routes.get("/endpoints/{endpoint_id}", response={200: EndpointOut, ERROR_CODES: Problem}, summary="One endpoint")
def get_endpoint(request, endpoint_id: int = EndpointId):
    endpoint = _endpoint(request, endpoint_id)
    keys.audit(request, "endpoint.read", {"id": endpoint.pk}, 1)
    return _out(endpoint)


@routes.patch("/endpoints/{endpoint_id}", response={200: EndpointOut, ERROR_CODES: Problem},
              summary="Change an endpoint (only the fields sent)")  # fmt: skip
def update_endpoint(request, data: EndpointChange, endpoint_id: int = EndpointId):
    endpoint = _endpoint(request, endpoint_id)
    changes = data.model_dump(exclude_unset=True)
    if None in changes.values():
        raise ApiProblem(422, "Invalid endpoint", "Leave a field out to keep it; null is not a value.")
    fields = _apply(request, endpoint, changes)
    with transaction.atomic(using=PRIMARY):
        if fields:
            endpoint.save(using=PRIMARY, update_fields=fields)  # the worker's own updates to other fields stay
        keys.audit(request, "endpoint.update", {"id": endpoint.pk, "fields": sorted(changes)}, 1)
    return _out(endpoint)


@routes.delete("/endpoints/{endpoint_id}", response={204: None, ERROR_CODES: Problem},
               summary="Delete an endpoint, its deliveries and their log")  # fmt: skip
def delete_endpoint(request, endpoint_id: int = EndpointId):
    endpoint = _endpoint(request, endpoint_id)
    with transaction.atomic(using=PRIMARY):
        endpoint.delete(using=PRIMARY)
        keys.audit(request, "endpoint.delete", {"id": endpoint_id}, 1)
    return Status(204, None)


@routes.post("/endpoints/{endpoint_id}/rotate-secret", response={200: EndpointWithSecret, ERROR_CODES: Problem},
             summary="Rotate the secret (both sign for 24 hours); the new one is in this answer only")  # fmt: skip
def rotate_secret(request, endpoint_id: int = EndpointId):
    endpoint = _endpoint(request, endpoint_id)
    with transaction.atomic(using=PRIMARY):
        secret = endpoint.rotate_secret(using=PRIMARY)
        keys.audit(request, "endpoint.rotate", {"id": endpoint.pk}, 1)
    return {**_out(endpoint), "secret": secret}


@routes.get("/endpoints/{endpoint_id}/deliveries", response={200: DeliveryPage, ERROR_CODES: Problem},
            summary="An endpoint's deliveries, newest event first")  # fmt: skip
def list_deliveries(request, filters: Query[DeliveryFilters], endpoint_id: int = EndpointId):
    endpoint = _endpoint(request, endpoint_id)
    rows = Delivery.objects.using(PRIMARY).filter(endpoint=endpoint).select_related("event").order_by("-event_id")
    if filters.before:
        rows = rows.filter(event_id__lt=filters.before)
    if filters.status:
        rows = rows.filter(status=filters.status)
    page = list(rows[: filters.limit + 1])
    more, page = len(page) > filters.limit, page[: filters.limit]
    keys.audit(request, "deliveries.list", {"endpoint": endpoint.pk}, len(page))
    return {"items": [_delivery_out(d) for d in page], "next": page[-1].event_id if more else None}


def _delivery(request, endpoint_id: int, delivery_id: int) -> Delivery:
    endpoint = _endpoint(request, endpoint_id)
    found = Delivery.objects.using(PRIMARY).select_related("event").filter(pk=delivery_id, endpoint=endpoint).first()
    if found is None:
        raise Http404
    return found


@routes.get("/endpoints/{endpoint_id}/deliveries/{delivery_id}", response={200: DeliveryDetail, ERROR_CODES: Problem},
            summary="One delivery with its attempts")  # fmt: skip
def get_delivery(request, endpoint_id: int = EndpointId, delivery_id: int = DeliveryId):
    row = _delivery(request, endpoint_id, delivery_id)
    attempts = row.attempt_log.using(PRIMARY).order_by("-id")[:MAX_ATTEMPTS_SHOWN]
    log = [{"at": a.at, "latency_ms": a.latency_ms, "status_code": a.status_code, "error": a.error,
            "response_excerpt": a.response_excerpt} for a in attempts]  # fmt: skip
    keys.audit(request, "delivery.read", {"id": row.pk}, 1)
    return {**_delivery_out(row), "attempt_log": log}


@routes.post("/endpoints/{endpoint_id}/deliveries/{delivery_id}/replay", response={202: Queued, ERROR_CODES: Problem},
             summary="Send a delivery again (same webhook-id)")  # fmt: skip
def replay_delivery(request, endpoint_id: int = EndpointId, delivery_id: int = DeliveryId):
    row = _delivery(request, endpoint_id, delivery_id)
    with transaction.atomic(using=PRIMARY):
        if not delivery.replay(row.pk, PRIMARY):
            raise ApiProblem(409, "Being sent", "This delivery is being sent now; replay it once it is done.")
        keys.audit(request, "delivery.replay", {"id": row.pk}, 1)
    return Status(202, Queued())
