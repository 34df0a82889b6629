"""/api/v1/signups: list (keyset pages), one record, create (double opt-in, Idempotency-Key), withdraw, erase.

1. Every answer holding personal data is audited (api.models.ApiAudit: key, action, filters, rows), like an
   export; so is every change.
2. An erased person is not there: 404, and absent from lists.
3. The list is newest first on the (created_at, id) index; a page's `next` cursor is the last row's
   (created_at, id), so page 1,000 costs what page 1 costs.
4. Create goes through the signup form's validation and the signup's one statement (users/signup_store.py):
   the person gets the confirmation email and is only confirmed when they click it. The answer is the same for
   a new and a known address.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from django.db import IntegrityError, router, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone, translation
from ninja import Field, Header, Path, Query, Router, Schema, Status
from pydantic import BaseModel, IPvAnyAddress

from api import keys, payloads
from api.models import IdempotentRequest
from api.problems import ERROR_CODES, ApiProblem, Problem
from formdef import formfields, published, topicfields
from users import signup_store
from users.erasure import erase_signup
from users.forms import SignupForm
from users.models import ERASED_EMAIL_DOMAIN, Signup
from users.withdrawal import withdraw

routes = Router(tags=["signups"])

MAX_ID = 2**63 - 1
SignupId = Path(..., ge=1, le=MAX_ID, description="The signup's id.")
NOTICE_INTERVAL = timedelta(hours=1)  # as the form's: at most one "already signed up" email an hour
IN_FLIGHT = timedelta(seconds=60)  # an unfinished idempotent request older than this is taken over
LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
# An RFC 3339 time as text: pydantic's datetime would also take a number (a Unix time) the schema does not allow.
ISO_TIME = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})?$"
Time = Annotated[str, Field(pattern=ISO_TIME, json_schema_extra={"format": "date-time"})]


class TopicOut(BaseModel):
    key: str
    chosen_at: datetime
    confirmed_at: datetime | None = Field(None, description="Set by the double opt-in (or at once when joined later).")
    withdrawn_at: datetime | None = Field(None, description="When the person left the topic.")


class SignupOut(BaseModel):  # plain pydantic: ninja's Schema wraps every item in a getter (half the page's time)
    id: int
    full_name: str
    email: str
    phone: str
    country: str
    language: str
    consent: bool
    consent_at: datetime | None
    consent_version: str
    created_at: datetime
    confirmed_at: datetime | None
    withdrawn_at: datetime | None
    email_blocked_at: datetime | None
    topics: list[TopicOut] = Field(default_factory=list, description="The topics chosen, with where each stands.")
    answers: dict[str, Any] = Field(
        default_factory=dict,
        description="Answers to the fields staff added to the form, by field key, typed: numbers as numbers, "
        "dates as ISO 8601 strings, yes/no as booleans, multiple choice as lists of choice values; an "
        "unanswered field is absent.",
    )
    form_version: int | None = Field(None, description="The published form version the answers were given on.")


class SignupPage(BaseModel):
    items: list[SignupOut]
    next: str | None = Field(None, description="Pass as `after` for the next page; null on the last page.")


class Filters(Schema):
    after: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]+=*$")
    limit: int = Field(100, ge=1, le=500)
    contactable: bool | None = None
    confirmed: bool | None = None
    withdrawn: bool | None = None
    since: Time | None = None
    until: Time | None = None
    language: str | None = Field(None, pattern=LANGUAGE)
    topic: str | None = Field(
        None,
        max_length=40,
        pattern=r"^[-a-zA-Z0-9_]+$",
        description="Only this topic's confirmed members (by its key) who have not left it.",
    )


Answer = Annotated[str, Field(max_length=2000)] | int | float | bool | list[Annotated[str, Field(max_length=200)]]


class SignupIn(Schema):
    full_name: str = Field(max_length=150)
    email: str = Field(max_length=254)
    phone: str = Field("", max_length=32)
    country: str = Field("", max_length=2)
    language: str = Field("en", pattern=LANGUAGE)
    consent: bool = Field(description="Must be true: the person ticked the consent box on your form.")
    consent_at: Time | None = Field(None, description="When the person consented (default: now).")
    ip: IPvAnyAddress | None = Field(None, description="The person's IP when they consented (evidence).")
    user_agent: str = Field("", max_length=512)
    topics: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=50,
        description="Keys of topics the person chose (public or hidden); confirmed with the address.",
    )  # fmt: skip
    answers: dict[Annotated[str, Field(max_length=40)], Answer] = Field(
        default_factory=dict, max_length=50,
        description="Answers to the fields staff added to the form, by field key, judged like the form's: "
        "text, a number, true/false for yes/no, an ISO date, a choice's value or a list of them. A required "
        "field must be answered; a key the current form does not define is refused.",
    )  # fmt: skip


class Accepted(Schema):
    status: str = "accepted"
    detail: str = "If the address is new, a confirmation email is on its way; the signup counts once confirmed."


def _visible(using: str | None = None):
    rows = Signup.objects.using(using) if using else Signup.objects.all()
    return rows.exclude(email__endswith=f"@{ERASED_EMAIL_DOMAIN}")


def _aware(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ApiProblem(422, "Invalid request", f"{name} is out of range.") from exc


def _cursor(row: Signup) -> str:
    raw = f"{int(row.created_at.timestamp() * 1_000_000)}.{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        micros, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split(".")
        at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        if not 0 < int(pk) <= MAX_ID:
            raise ValueError
        return at, int(pk)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ApiProblem(400, "Bad cursor", "Pass `after` exactly as a page's `next` gave it.") from exc


@routes.get("", response={200: SignupPage, ERROR_CODES: Problem}, summary="List signups, newest first")
def list_signups(request, filters: Query[Filters]):
    keys.require(request, "signups:read")
    rows = _visible().order_by("-created_at", "-id")
    if filters.after:
        at, pk = _decode(filters.after)
        rows = rows.filter(RawSQL("(users_signup.created_at, users_signup.id) < (%s, %s)", (at, pk),
                                  output_field=BooleanField()))  # fmt: skip
    contactable = Q(consent=True, confirmed_at__isnull=False, withdrawn_at__isnull=True, email_blocked_at__isnull=True)
    if filters.contactable is not None:
        rows = rows.filter(contactable) if filters.contactable else rows.exclude(contactable)
    if filters.confirmed is not None:
        rows = rows.filter(confirmed_at__isnull=not filters.confirmed)
    if filters.withdrawn is not None:
        rows = rows.filter(withdrawn_at__isnull=not filters.withdrawn)
    if filters.since:
        rows = rows.filter(created_at__gte=_aware(filters.since, "since"))
    if filters.until:
        rows = rows.filter(created_at__lt=_aware(filters.until, "until"))
    if filters.language:
        rows = rows.filter(language=filters.language)
    if filters.topic:  # one filter(): the three conditions hold on the same membership
        rows = rows.filter(memberships__topic__key=filters.topic, memberships__confirmed_at__isnull=False,
                           memberships__withdrawn_at__isnull=True)  # fmt: skip
    rows = rows.prefetch_related(payloads.memberships())
    page = list(rows[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    shown = filters.dict(exclude_none=True, exclude={"after", "limit"})
    keys.audit(request, "list", {k: str(v) for k, v in shown.items()}, len(page))
    return {"items": [payloads.person(s) for s in page], "next": _cursor(page[-1]) if more else None}


@routes.get("/{signup_id}", response={200: SignupOut, ERROR_CODES: Problem}, summary="One signup")
def get_signup(request, signup_id: int = SignupId):
    keys.require(request, "signups:read")
    signup = _visible().filter(pk=signup_id).first()
    if signup is None:
        raise Http404
    keys.audit(request, "read", {"id": signup.pk}, 1)
    return payloads.person(signup)


@routes.post("", response={202: Accepted, ERROR_CODES: Problem}, summary="Sign someone up (double opt-in)")
def create_signup(request, data: SignupIn, idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    keys.require(request, "signups:write")
    if not data.consent:
        raise ApiProblem(422, "Consent required", "consent must be true: a signup needs the person's consent.")
    seen = _idempotent_start(request, idempotency_key) if idempotency_key is not None else None
    if seen is not None:
        return seen
    with translation.override(data.language if data.language in dict(_languages()) else "en"):
        definition = published.current()  # the form as a person would be shown it now
        form = SignupForm({"full_name": data.full_name, "email": data.email, "phone": data.phone,
                           "country": data.country.upper(), "consent": "on", **_answers(definition, data.answers)},
                          definition=definition)  # fmt: skip
        if not form.is_valid():
            errors = [{"loc": _loc(name), "msg": str(m)} for name, ms in form.errors.items() for m in ms]
            raise ApiProblem(422, "Invalid signup", "Some fields are not valid.", errors=errors)
        ip = str(data.ip) if data.ip else None
        fields = form.to_signup_fields(ip=ip, user_agent=data.user_agent)
        fields.pop("topics")  # the form offers public topics only; the API may name hidden ones too
        topics = _topics(data.topics)
    now = timezone.now()
    fields["consent_at"] = min(_aware(data.consent_at, "consent_at"), now) if data.consent_at else now
    created = signup_store.store(Signup(**fields), ip=ip, notice_after=NOTICE_INTERVAL, topics=topics)
    keys.audit(request, "create", {"created": created}, int(created))
    if idempotency_key is not None:
        IdempotentRequest.objects.using(router.db_for_write(IdempotentRequest)).filter(
            key=request.auth, idempotency_key=idempotency_key
        ).update(response_status=202)
    return Status(202, Accepted())


def _loc(name: str) -> list[str]:
    """Where in the request body a form error belongs: an answer's under "answers", by its field key."""
    if name.startswith(formfields.PREFIX):
        return ["body", "answers", name.removeprefix(formfields.PREFIX)]
    return ["body", name]


def _answers(definition: published.Definition, answers: dict) -> dict:
    """Return the answers as the form's inputs (f_<key>); 422 for a key the current form does not define."""
    unknown = [key for key in answers if definition.field(key) is None]
    if unknown:
        errors = [{"loc": ["body", "answers", key], "msg": "not a field of the form"} for key in unknown]
        raise ApiProblem(422, "Invalid signup", "Some answers are to fields the form does not have.", errors=errors)
    as_typed = {True: formfields.YES, False: formfields.NO}
    return {
        formfields.PREFIX + key: as_typed[value] if isinstance(value, bool) else value if isinstance(value, list)
        else str(value)
        for key, value in answers.items()
    }  # fmt: skip


def _topics(keys: list[str]) -> list[tuple[int, str]]:
    """Return the chosen topics as the signup stores them (wording in the active language); 422 for an unknown key."""
    definition = published.current()
    unknown = [key for key in keys if definition.topic(key) is None]
    if unknown:
        errors = [{"loc": ["body", "topics"], "msg": f"not a topic: {key}"} for key in unknown]
        raise ApiProblem(422, "Invalid signup", "Some topics are not defined.", errors=errors)
    return topicfields.chosen(definition, list(dict.fromkeys(keys)))


def _languages():
    from django.conf import settings

    return settings.LANGUAGES


def _idempotent_start(request, idempotency_key: str):
    """Record the key, or answer as the first request did (None: go on and handle this one)."""
    if not (0 < len(idempotency_key) <= 200 and idempotency_key.isascii() and idempotency_key.isprintable()):
        raise ApiProblem(400, "Bad Idempotency-Key", "Use up to 200 printable ASCII characters.")
    using = router.db_for_write(IdempotentRequest)
    body_hash = hashlib.sha256(request.body).hexdigest()
    rows = IdempotentRequest.objects.using(using)
    try:
        with transaction.atomic(using=using):
            rows.create(key=request.auth, idempotency_key=idempotency_key, body_hash=body_hash)
        return None
    except IntegrityError:
        pass
    first = rows.get(key=request.auth, idempotency_key=idempotency_key)
    if first.body_hash != body_hash:
        raise ApiProblem(422, "Idempotency-Key reused", "This key was used with another request body.")
    if first.response_status is None:
        if first.created_at > timezone.now() - IN_FLIGHT:
            raise ApiProblem(409, "In progress", "The first request with this key is still being handled.")
        return None  # its handler died: this one takes over (the store is safe to repeat)
    return Status(202, Accepted())


@routes.post("/{signup_id}/withdraw", response={200: SignupOut, ERROR_CODES: Problem}, summary="Withdraw consent")
def withdraw_signup(request, signup_id: int = SignupId):
    keys.require(request, "signups:write")
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):
        signup = _visible(using).select_for_update().filter(pk=signup_id).first()
        if signup is None:
            raise Http404
        withdraw(signup, None)
        keys.audit(request, "withdraw", {"id": signup.pk}, 1)
    return payloads.person(signup)


@routes.post("/{signup_id}/erase", response={204: None, ERROR_CODES: Problem}, summary="Erase a person")
def erase(request, signup_id: int = SignupId):
    keys.require(request, "signups:erase")
    using = router.db_for_write(Signup)
    with transaction.atomic(using=using):  # the erasure and its audit row together
        if (
            not _visible(using).filter(pk=signup_id).exists()
            or erase_signup(signup_id, request.auth.created_by) is None
        ):
            raise Http404
        keys.audit(request, "erase", {"id": signup_id}, 1)
    return Status(204, None)
