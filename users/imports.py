"""Importing a list exported from another tool (listmonk, Mailchimp): read, preview, write. Every rule in one place.

1. Layouts. The header says which tool wrote the file (`LAYOUTS`): listmonk's subscriber export
   (uuid,email,name,attributes,status,created_at,updated_at) and Mailchimp's audience exports ("Email Address",
   "First Name", "Last Name", "Phone Number", ..., OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, CC, ...;
   the unsubscribed and cleaned files add UNSUB_TIME / CLEAN_TIME). Anything else is refused before any write.
2. One outcome per row, the first that holds (`OUTCOMES`): no valid address; repeated in the file; opted out
   in the source (listmonk blocklisted or disabled, a Mailchimp unsubscribed or cleaned row); erased here (its
   address's HMAC is in the erasure ledger, users.tombstones: never brought back); already here or blocked
   here (the database's unique constraint says so at the INSERT, never a read beforehand); imported
   confirmed; imported unconfirmed.
3. Consent evidence. An opt-in time (Mailchimp OPTIN_TIME, OPTIN_IP) is a `given` ConsentEvent at that time
   with wording version "import:<tool>"; a confirm time (CONFIRM_TIME, CONFIRM_IP) is a `confirmed` event and
   the row's confirmed_at (a single opt-in list has only the confirm time: the `given` event is then at it).
   Listmonk's export carries no per-row evidence.
4. Rows without a confirm time are entered unconfirmed (consent claimed by the source, not proven) with a
   confirmation email in their language (a "language" column or listmonk attribute, else `default_language`),
   spread at RECONFIRM_PER_HOUR through the outbox's run_after, after whatever spread emails (reconfirm,
   an earlier import) are still waiting: one sending rate for all of them. Unconfirmed rows are purged
   RETENTION_UNCONFIRMED_DAYS after the import, like any signup: the preview says when the last email goes.
5. Writes go in batches of BATCH rows, one transaction each on the primary: INSERT ... ON CONFLICT DO NOTHING
   RETURNING (no unique-violation ERROR, whose STATEMENT line would carry addresses into the server log), then
   the inserted rows' events and emails (each a bulk INSERT; the email rows are those tasks.enqueue_email writes).
   The preview reads the replica to estimate "already here".
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connections, router, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult

from users import emails, tasks, tombstones
from users.forms import clean_text
from users.models import BLOCKED, ConsentEvent, Signup
from users.signup_store import insert_parts

BATCH = 1000
PREVIEW_ROWS = 10
ADMIN_MAX_ROWS = 10_000  # the admin page imports in the request (seconds); larger files: `manage.py import_signups`
ADMIN_MAX_BYTES = 5 * 1024 * 1024
HELD_SECONDS = 15 * 60  # an uploaded file waits this long in the cache between its preview and the confirming POST

INVALID, IN_FILE, OPTED_OUT, ERASED, BLOCKED_HERE, DUPLICATE, CONFIRMED, UNCONFIRMED = (
    "invalid", "repeated", "opted_out", "erased", "blocked", "duplicate", "confirmed", "unconfirmed",
)  # fmt: skip
OUTCOMES = {
    CONFIRMED: "imported as confirmed (opt-in evidence kept)",
    UNCONFIRMED: "imported unconfirmed: a confirmation email is queued",
    DUPLICATE: "skipped: already here",
    BLOCKED_HERE: "skipped: address blocked here (bounce or complaint)",
    ERASED: "skipped: erased here (never brought back)",
    OPTED_OUT: "skipped: unsubscribed, cleaned or blocklisted in the source",
    IN_FILE: "skipped: repeated in the file",
    INVALID: "skipped: no valid email address",
}


class ImportRefused(Exception):
    """The file cannot be imported (unknown layout, unreadable, the erasure ledger unreachable)."""


@dataclass
class Row:
    email: str
    full_name: str = ""
    phone: str = ""
    country: str = ""
    language: str = ""
    optin_at: datetime | None = None
    optin_ip: str | None = None
    confirm_at: datetime | None = None
    confirm_ip: str | None = None
    opted_out: bool = False

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass
class Preview:
    layout: str
    total: int
    counts: Counter
    first: list[tuple[Row | None, str]] = field(default_factory=list)
    last_email_at: datetime | None = None


# --- reading: the tools' layouts ------------------------------------------------------------------------------
def _time(value: str | None) -> datetime | None:
    """Parse the tools' times ("2018-06-12 07:53:28" in UTC, ISO 8601 with a zone); None when blank or not one."""
    value = (value or "").strip()
    if not value or value.lower() == "null":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _mailchimp(rec: dict) -> Row:
    first, last = rec.get("First Name") or "", rec.get("Last Name") or ""
    opted_out = bool((rec.get("UNSUB_TIME") or "").strip() or (rec.get("CLEAN_TIME") or "").strip())
    return Row(email=rec.get("Email Address") or "", full_name=f"{first} {last}", phone=rec.get("Phone Number") or "",
               country=rec.get("CC") or "", language=rec.get("Language") or rec.get("LANGUAGE") or "",
               optin_at=_time(rec.get("OPTIN_TIME")), optin_ip=_ip(rec.get("OPTIN_IP")),
               confirm_at=_time(rec.get("CONFIRM_TIME")), confirm_ip=_ip(rec.get("CONFIRM_IP")),
               opted_out=opted_out)  # fmt: skip


def _listmonk(rec: dict) -> Row:
    try:
        attributes = json.loads(rec.get("attributes") or "{}")
    except ValueError:
        attributes = {}
    attributes = attributes if isinstance(attributes, dict) else {}
    text = {k: v for k, v in attributes.items() if isinstance(v, str)}
    return Row(email=rec.get("email") or "", full_name=rec.get("name") or "", phone=text.get("phone", ""),
               country=text.get("country", ""), language=text.get("language", ""),
               opted_out=(rec.get("status") or "").strip().lower() in {"blocklisted", "disabled"})  # fmt: skip


LAYOUTS: dict[str, tuple[set[str], Callable[[dict], Row]]] = {
    "listmonk": ({"uuid", "email", "name", "attributes", "status"}, _listmonk),
    "mailchimp": ({"Email Address", "OPTIN_TIME", "CONFIRM_TIME"}, _mailchimp),
}


def _records(stream) -> tuple[str, Iterator[dict]]:
    """Return the layout's name and the file's records (the file: bytes, UTF-8 with or without a BOM)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.DictReader(text)
    try:
        header = set(reader.fieldnames or ())
    except (csv.Error, UnicodeError) as exc:
        raise ImportRefused(f"the file is not a readable CSV ({type(exc).__name__})") from None
    for name, (required, _parse) in LAYOUTS.items():
        if required <= header:
            return name, reader
    raise ImportRefused("the header is neither listmonk's subscriber export nor a Mailchimp audience export")


def _clean(row: Row, default_language: str) -> Row | None:
    """Normalise a row as the signup form would; None when its address is not valid."""
    try:
        email = clean_text(row.email, "email").strip()
        local, _at, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
        validate_email(email)
    except ValidationError:
        return None
    try:
        name = clean_text(row.full_name, "name")[:150]
    except ValidationError:
        name = ""  # a name we cannot store drops the name, not the person
    if len(email) > 254:
        return None
    country = row.country.strip().upper()
    country = country if len(country) == 2 and country.isalpha() else ""
    language = row.language.strip().lower()[:2]
    row.email, row.full_name, row.country = email, name, country
    row.language = language if language in dict(settings.LANGUAGES) else default_language
    row.phone = _phone(row.phone, country)
    return row


def _phone(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw.strip(), region or None) if raw.strip() else None
    except phonenumbers.NumberParseException:
        return ""
    if number is None or not phonenumbers.is_valid_number(number):
        return ""  # a wrong phone drops the phone, not the person
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def rows(stream, *, default_language: str = "") -> tuple[str, Iterator[tuple[Row | None, str | None]]]:
    """Return the layout and each row with its outcome so far: (row, None) to try, (row or None, outcome) skipped."""
    layout, records = _records(stream)
    parse = LAYOUTS[layout][1]
    default_language = default_language or settings.LANGUAGE_CODE
    erased = _erased_addresses()

    def judged() -> Iterator[tuple[Row | None, str | None]]:
        seen: set[str] = set()
        for rec in _readable(records):
            row = _clean(parse(rec), default_language)
            if row is None:
                yield None, INVALID
            elif row.key in seen:
                yield row, IN_FILE
            elif row.opted_out:
                seen.add(row.key)
                yield row, OPTED_OUT
            elif tombstones.address_hmac(row.email) in erased:
                seen.add(row.key)
                yield row, ERASED
            else:
                seen.add(row.key)
                yield row, None

    return layout, judged()


def _readable(records: Iterator[dict]) -> Iterator[dict]:
    try:
        yield from records
    except csv.Error as exc:  # a NUL byte, a field over csv's limit: the preview meets it before any write
        raise ImportRefused(f"the file is not a readable CSV ({exc})") from None


def _erased_addresses() -> set[str]:
    """Return the HMACs of every erased address (the ledger: one read per entry). Raises ImportRefused."""
    try:
        return {tombstones.read(name).address for page in tombstones.names() for name in page}
    except tombstones.LedgerUnavailable as exc:
        raise ImportRefused(f"the erasure ledger cannot be read ({exc}): nobody erased may come back") from None


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the preview: nothing written ------------------------------------------------------------------------------
def preview(stream, *, default_language: str = "") -> Preview:
    """Count each outcome the import would have, reading the replica for the addresses already here."""
    layout, judged = rows(stream, default_language=default_language)
    result = Preview(layout=layout, total=0, counts=Counter())
    for batch in _batches(judged, BATCH):
        result.total += len(batch)
        tried = {row.key: row for row, outcome in batch if outcome is None}
        here = Signup.objects.annotate(key=Lower("email")).filter(key__in=list(tried)).values_list("key", "status")
        here = dict(here)  # the replica: a preview writes nothing, and an estimate is all it claims
        for row, outcome in batch:
            if outcome is None:
                status = here.get(row.key)
                outcome = _evidence_outcome(row) if status is None else BLOCKED_HERE if status == BLOCKED else DUPLICATE
            result.counts[outcome] += 1
            if len(result.first) < PREVIEW_ROWS:
                result.first.append((row, outcome))
    if result.counts[UNCONFIRMED]:
        start, gap = _spread_start(router.db_for_write(Signup))
        result.last_email_at = start + gap * (result.counts[UNCONFIRMED] - 1)
    return result


def _evidence_outcome(row: Row) -> str:
    return CONFIRMED if row.confirm_at else UNCONFIRMED


# --- the import ------------------------------------------------------------------------------------------------
def run(stream, *, default_language: str = "", progress: Callable[[int], None] | None = None) -> Counter:
    """Import the file; return the count of each outcome. `progress(rows_done)` is called after each batch."""
    layout, judged = rows(stream, default_language=default_language)
    using = router.db_for_write(Signup)
    counts, done = Counter(), 0
    start, gap = _spread_start(using)
    for batch in _batches(judged, BATCH):
        with transaction.atomic(using=using):
            outcomes = _write(batch, layout, using, start + gap * counts[UNCONFIRMED], gap)
        counts.update(outcomes)
        done += len(batch)
        if progress:
            progress(done)
    return counts


def _write(batch: list[tuple[Row | None, str | None]], layout: str, using: str, first_email_at, gap) -> Counter:
    counts = Counter(outcome for _row, outcome in batch if outcome is not None)
    tried = [row for row, outcome in batch if outcome is None]
    if not tried:
        return counts
    now, version = timezone.now(), f"import:{layout}"
    signups = [_signup(row, now, version) for row in tried]
    inserted = _insert(signups, using)  # lower(email) -> id, for the rows the constraint let in
    conflicts = [row.key for row in tried if row.key not in inserted]
    if conflicts:
        blocked = Signup.objects.using(using).alias(key=Lower("email")).filter(key__in=conflicts, status=BLOCKED)
        counts[BLOCKED_HERE] += blocked.count()
        counts[DUPLICATE] += len(conflicts) - counts[BLOCKED_HERE]
    events, asked = [], []
    for row in tried:
        pk = inserted.get(row.key)
        if pk is None:
            continue
        given_at = row.optin_at or row.confirm_at
        if given_at:
            events.append(ConsentEvent(signup_id=pk, kind=ConsentEvent.GIVEN, at=given_at, wording_version=version,
                                       ip=row.optin_ip or (None if row.optin_at else row.confirm_ip)))  # fmt: skip
        if row.confirm_at:
            events.append(ConsentEvent(signup_id=pk, kind=ConsentEvent.CONFIRMED, at=row.confirm_at,
                                       wording_version=version, ip=row.confirm_ip))  # fmt: skip
            counts[CONFIRMED] += 1
        else:
            asked.append((pk, first_email_at + gap * len(asked)))
            counts[UNCONFIRMED] += 1
    ConsentEvent.objects.using(using).bulk_create(events)
    _enqueue_confirmations(asked, using)
    return counts


def _enqueue_confirmations(asked: list[tuple[int, datetime]], using: str) -> None:
    """Queue a confirmation email per (signup id, run_after) in one INSERT: the rows tasks.enqueue_email writes."""
    task, backend = tasks.send_email, tasks.send_email.get_backend()
    DBTaskResult.objects.using(using).bulk_create(
        DBTaskResult(args_kwargs={"args": [], "kwargs": {"signup_id": pk, "kind": emails.CONFIRM}},
                     priority=task.priority, task_path=task.module_path, queue_name=task.queue_name,
                     run_after=run_after, backend_name=backend.alias)
        for pk, run_after in asked
    )  # fmt: skip


def _signup(row: Row, now: datetime, version: str) -> Signup:
    given_at = row.optin_at or row.confirm_at
    return Signup(full_name=row.full_name, email=row.email, phone=row.phone, country=row.country, consent=True,
                  consent_at=given_at, consent_version=version if given_at else "", created_at=now,
                  ip_address=row.optin_ip or (None if row.optin_at else row.confirm_ip), user_agent="",
                  confirmed_at=row.confirm_at, confirmed_ip=row.confirm_ip if row.confirm_at else None,
                  language=row.language)  # fmt: skip


def _insert(signups: list[Signup], using: str) -> dict[str, int]:
    """INSERT the rows in one statement, skipping addresses already taken; return lower(email) -> id of the new."""
    connection = connections[using]
    values, params = [], []
    for signup in signups:
        cols, vals, row_params = insert_parts(signup, connection, {})
        values.append(f"({vals})")
        params.extend(row_params)
    sql = (
        f"INSERT INTO {Signup._meta.db_table} ({cols}) VALUES {', '.join(values)}"  # noqa: S608 - names only
        " ON CONFLICT DO NOTHING RETURNING lower(email), id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _spread_start(using: str) -> tuple[datetime, timedelta]:
    """Return when the next spread email may go and the gap between two (RECONFIRM_PER_HOUR, shared)."""
    gap = timedelta(hours=1) / settings.RECONFIRM_PER_HOUR
    start = timezone.now()
    waiting = tasks.email_tasks(using=using).filter(status="READY", run_after__gt=start)
    waiting = waiting.filter(args_kwargs__kwargs__kind__in=[emails.CONFIRM, emails.RECONFIRM])
    last = waiting.order_by("-run_after").values_list("run_after", flat=True).first()
    return (max(start, last + gap) if last else start), gap


# --- the admin page: preview, then import the same bytes --------------------------------------------------------
def admin_preview(found: Preview, data: bytes, language: str) -> dict:
    """Return the preview's context, holding the file (cache, HELD_SECONDS) for the confirming POST if it may run."""
    ctx = {"preview": found, "counts": [(label, found.counts[key]) for key, label in OUTCOMES.items()],
           "retention_days": settings.RETENTION_UNCONFIRMED_DAYS}  # fmt: skip
    if len(data) > ADMIN_MAX_BYTES or found.total > ADMIN_MAX_ROWS:
        ctx["error"] = (f"This file is too large for the admin page (at most {ADMIN_MAX_ROWS:,} rows): import it "
                        "with `manage.py import_signups FILE`, which shows its progress.")  # fmt: skip
    elif found.total:
        token = get_random_string(32)
        cache.set(f"users:import:{token}", {"data": data, "language": language}, HELD_SECONDS)
        ctx["token"] = token
    return ctx


def run_held(token: str) -> Counter:
    """Import the file held under `token` once (the token is spent first). Raises ImportRefused."""
    key = f"users:import:{token}"
    held = cache.get(key) if token.isalnum() else None
    if held is None:
        raise ImportRefused("the previewed file is no longer held (more than 15 minutes, or imported already)")
    cache.delete(key)
    return run(io.BytesIO(held["data"]), default_language=held["language"])
