"""Get collected data out for staff: the list as streaming CSV or XLSX, one person as JSON; each export audited.

Which rows: the contactable people (Signup.objects.contactable()) unless staff explicitly choose "all
records"; erased rows are never exported (scoped()). Filtered by a topic (the list's topic filter), the
export holds that topic's confirmed members and ends with each one's unsubscribe URL for that topic
(users.topics.unsubscribe_url), so an outside mailing tool can send the topic's List-Unsubscribe.

The CSV is read from a replica through a server-side cursor inside a transaction (outside one, Django
declares the cursor WITH HOLD, and PostgreSQL then materialises the whole result before the first row),
a few thousand rows per round trip, and leaves in ~64 KB pieces: memory stays flat whatever the size.
The audit row is written to the primary when the export starts and completed when it ends.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.db.models import CharField, F, Func, QuerySet
from django.utils import timezone

from users import answers, topics, xlsx
from users.models import COLLECTED_FIELDS, STATUS_FIELDS, Signup, SignupExport

logger = logging.getLogger("users")

# The list: what was collected, where the person stands, and the language to write to them in.
EXPORT_FIELDS = ["id", *COLLECTED_FIELDS, "status", "confirmed_at", "language"]
# One person's JSON adds every status detail, and their consent ledger.
PERSON_FIELDS = ["id", *COLLECTED_FIELDS, "status", *STATUS_FIELDS, "answers", "form_version"]  # answers: typed
EVENT_FIELDS = ["kind", "at", "wording_version", "ip"]
TIME_FIELDS = {"consent_at", "created_at", "confirmed_at"}
# The spreadsheet's cell types (users.xlsx): the phone stays text, times are dates (in UTC, said in the header).
XLSX_KINDS = {"id": xlsx.NUMBER, "phone": xlsx.CODE, "consent": xlsx.BOOL, **dict.fromkeys(TIME_FIELDS, xlsx.TIME)}
XLSX_HEADER = [f"{field} (UTC)" if field in TIME_FIELDS else field for field in EXPORT_FIELDS]
CONTACTABLE, ALL = "contactable", "all"
SCOPES = {CONTACTABLE: "contactable people only (confirmed, consenting, not bounced)",
          ALL: "all records (every status except erased)"}  # fmt: skip
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_ROWS = 2000  # rows per FETCH from the server-side cursor
FLUSH_BYTES = 64 * 1024  # hand the server a piece once this much CSV is buffered
# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets (CSV injection, OWASP).
FORMULA_STARTS = frozenset("=+-@\t\r")
# A phone the form validated is E.164: "+" and digits only, which no spreadsheet runs as a formula. It is
# written as is, quoted like every text cell, so "Format quoted field as text" keeps the + (docs/staff.md).
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
PHONE_COLUMN = EXPORT_FIELDS.index("phone")


class IsoUTC(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by PostgreSQL: far cheaper than parsing it in Python."""

    template = "%(expressions)s"  # SQLite (local mode) stores timestamps as text already
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def safe_row(row: tuple) -> list:
    """Return a CSV row with formula-like text made text, and a valid E.164 phone left as it is."""
    cells = [safe_cell(value) for value in row]
    phone = row[PHONE_COLUMN]
    if phone and E164.fullmatch(phone):
        cells[PHONE_COLUMN] = phone
    return cells


def safe_cell(value: object) -> object:
    """Return a CSV cell a spreadsheet shows as text: a formula-like string gets a leading apostrophe."""
    if value.__class__ is str and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def scoped(queryset: QuerySet, scope: str) -> QuerySet:
    """Return the rows an export of `scope` holds: contactable people by default; never an erased row."""
    return queryset.not_erased() if scope == ALL else queryset.contactable()


def start_audit(user, kind: str, filters: dict) -> SignupExport:
    """Record on the primary that `user` started an export (finished by `finish_audit`)."""
    return SignupExport.objects.create(kind=kind, user=user, username=user.get_username(), filters=filters)


def finish_audit(export: SignupExport, rows: int, complete: bool) -> None:
    export.row_count, export.complete, export.finished_at = rows, complete, timezone.now()
    try:
        export.save(update_fields=["row_count", "complete", "finished_at"])
    except DatabaseError:  # never let the audit hide the export's own outcome; the start row still exists
        logger.exception("export %s: could not record its end (%s rows, complete=%s)", export.pk, rows, complete)
    logger.info(
        "export %s: %s by staff %s, %d rows, filters on %s, %s",
        export.pk, export.kind, export.username, rows, ",".join(sorted(export.filters)) or "nothing",
        "complete" if complete else "client went away",
    )  # fmt: skip


UNSUBSCRIBE_COLUMN = "unsubscribe_url"  # a topic-filtered export's last column (its topic's one-click link)
EMAIL_COLUMN = EXPORT_FIELDS.index("email")


def _with_unsubscribe(row, topic_id: int):
    """Return the row with this person's unsubscribe URL for the topic appended (signed here, never stored)."""
    return (*row, topics.unsubscribe_url(Signup(pk=row[0], email=row[EMAIL_COLUMN]), topic_id))


# --- the answers to the fields staff added (formdef): a column each, after the fixed ones ----------------
ANSWER_XLSX_KINDS = {"number": xlsx.NUMBER, "yesno": xlsx.BOOL, "date": xlsx.DATE}
LIST_SEPARATOR = "; "  # a multiple choice's values in one cell


def answer_columns(using: str | None = None) -> list[dict]:
    """Return the fields with a column: current ones in form order, then switched-off ones (users/answers.py)."""
    return answers.columns(using=using)


def answer_header(columns: list[dict]) -> list[str]:
    return [f"answer_{spec['key']}" for spec in columns]  # never clashes with a fixed column's name


def answer_cells(stored: dict | None, columns: list[dict]) -> list:
    """Return one row's answer cells, typed: numbers and booleans as such, dates ISO, choices by value."""
    stored = stored if isinstance(stored, dict) else {}
    cells = []
    for spec in columns:
        value = stored.get(spec["key"])
        cells.append(LIST_SEPARATOR.join(map(str, value)) if isinstance(value, list) else value)
    return cells


def csv_stream(queryset: QuerySet, export: SignupExport, topic_id: int | None = None) -> Iterator[bytes]:
    """Yield the queryset's rows as UTF-8 CSV pieces; complete the audit with the rows handed out.

    A piece counts as sent once yielded: whether the client's socket really took it is unknowable, and an
    audit of personal data had better over-count than under-count.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)  # text quoted; ids and booleans bare
    buffer.write("\ufeff")  # BOM: Excel then reads UTF-8 names correctly
    extra = answer_columns(queryset.db)
    writer.writerow([*EXPORT_FIELDS, *answer_header(extra), *([UNSUBSCRIBE_COLUMN] if topic_id else [])])
    sent = pending = 0
    complete = False
    try:
        with transaction.atomic(using=queryset.db):
            columns = [IsoUTC(field) if field in TIME_FIELDS else field for field in EXPORT_FIELDS]
            for row in queryset.values_list(*columns, "answers").iterator(chunk_size=CHUNK_ROWS):
                cells = [*safe_row(row[:-1]), *map(safe_cell, answer_cells(row[-1], extra))]
                writer.writerow([*cells, _with_unsubscribe(row[:-1], topic_id)[-1]] if topic_id else cells)
                pending += 1
                if buffer.tell() >= FLUSH_BYTES:
                    sent, pending = sent + pending, 0
                    yield _drain(buffer)
        sent, pending = sent + pending, 0
        yield _drain(buffer)
        complete = True
    finally:  # also on GeneratorExit: the client went away and the server closed the response
        finish_audit(export, sent, complete)


def xlsx_stream(queryset: QuerySet, export: SignupExport, topic_id: int | None = None) -> Iterator[bytes]:
    """Yield the queryset's rows as an XLSX file with typed cells, in pieces; complete the audit as csv_stream."""
    extra = answer_columns(queryset.db)
    kinds = [XLSX_KINDS.get(field, xlsx.TEXT) for field in EXPORT_FIELDS]
    kinds += [ANSWER_XLSX_KINDS.get(spec["kind"], xlsx.TEXT) for spec in extra] + ([xlsx.TEXT] if topic_id else [])
    header = [*XLSX_HEADER, *answer_header(extra), *([UNSUBSCRIBE_COLUMN] if topic_id else [])]
    sent, complete = 0, False

    def rows():
        nonlocal sent
        for row in queryset.values_list(*EXPORT_FIELDS, "answers").iterator(chunk_size=CHUNK_ROWS):
            sent += 1
            cells = (*row[:-1], *answer_cells(row[-1], extra))
            yield (*cells, _with_unsubscribe(row[:-1], topic_id)[-1]) if topic_id else cells

    try:
        with transaction.atomic(using=queryset.db):  # a server-side cursor that does not materialise (above)
            yield from xlsx.stream(header, kinds, rows(), sheet="signups", flush_bytes=FLUSH_BYTES)
        complete = True
    finally:
        finish_audit(export, sent, complete)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def person_json(signup: Signup) -> str:
    """Return everything stored about one person, with their consent ledger, as the JSON they are sent."""
    data = {field: getattr(signup, field) for field in PERSON_FIELDS}
    data["country"] = signup.country.code or ""  # a django-countries Country object otherwise
    rows = signup.events.using(signup._state.db).values(*EVENT_FIELDS, "topic__key")
    # Each event's topic by its key (None: the form's own consent), named "topic" like the other fields.
    events = [{name: row[name] for name in EVENT_FIELDS} | {"topic": row["topic__key"]} for row in rows]
    # The answers again with each field's label and the value in words, in the person's language.
    told = [{"key": a["key"], "label": a["label"], "value": a["value"], "shown": a["shown"]}
            for a in answers.labelled(signup, signup.language)]  # fmt: skip
    body = {"signup": data, "answers_explained": told, "topics": person_topics(signup), "consent_ledger": events,
            "exported_at": timezone.now()}  # fmt: skip
    return json.dumps(body, cls=DjangoJSONEncoder, indent=2)


TOPIC_FIELDS = ["wording_version", "chosen_at", "confirmed_at", "withdrawn_at"]


def person_topics(signup: Signup) -> list[dict]:
    """Return the person's topic memberships (key, wording, when chosen, confirmed, left), as their JSON holds them."""
    rows = signup.memberships.using(signup._state.db).values(*TOPIC_FIELDS, key=F("topic__key"))
    return [{"key": row["key"], **{name: row[name] for name in TOPIC_FIELDS}} for row in rows]


def filters_of(params: Iterable[tuple[str, str]]) -> dict:
    """Return the list's search and filter parameters worth recording (not the page number)."""
    return {key: value for key, value in params if key not in {"p", "e"}}
