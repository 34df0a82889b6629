"""The erasure ledger: every erasure, kept outside the database, so that a restored backup cannot bring anyone back.

1. What an entry is: a keyed HMAC-SHA256 of the normalised address (stripped, lower-cased; the key is
   ERASURE_LEDGER_KEY, a secret: a bare hash of an address is reversed by a dictionary), the signup id, when
   the row was created, when it was erased, and why ("erased" on request, "purged" by retention). Never an
   address, a name or an IP: the ledger outlives the data it points at.
2. Where: an S3 bucket with Object Lock (ERASURE_LEDGER_BUCKET; each entry written once, If-None-Match, and
   retained in COMPLIANCE mode for ERASURE_LEDGER_RETAIN_DAYS, as long as backups live) in AWS and against
   moto in the tests; a folder (ERASURE_LEDGER_DIR) in local mode. One object or file per entry, named by
   the erasure time and signup id (`name_for`): a retry writes the same name, and a name already there is
   success, so an entry is never written twice nor overwritten.
3. How: users.erasure.erase_signup records the entry's name in the database (Tombstone) and queues
   users.tasks.write_tombstone in the erasure's own transaction (the outbox): the erasure never waits for
   S3, and S3 being down only delays the entry (the worker retries it until it lands, never giving up).
4. Restore detection: the database learns each entry's name before the ledger does (same transaction as the
   erasure; the ledger is written after the commit). So in normal running every ledger name is known to the
   database. A ledger name the database does not know means the database went back in time: a restore.
   `restore_pending()` says so (cached per process for ERASURE_LEDGER_CHECK_SECONDS, every 10 s while
   pending); the worker holds email and /ops/ and /ready show it until `manage.py reapply_erasures` has
   erased those people again and recorded the names.
5. The S3 client is built once, lazily, with explicit timeouts and bounded retries (like ops/cloudwatch.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connections

from users.models import Tombstone

logger = logging.getLogger("users.tombstones")

PREFIX = "erasures/"
VERSION = 1
PENDING_RECHECK_SECONDS = 10.0  # while a restore is pending, look again this often (reapply may have run)
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 2},
    user_agent_extra="signup-erasure-ledger",
)

_client = None
_client_lock = threading.Lock()


class LedgerUnavailable(Exception):
    """The ledger could not be read or written (S3 unreachable, refused, a folder not writable)."""


@dataclass(frozen=True)
class Entry:
    name: str
    address: str  # HMAC of the normalised address, hex
    signup_id: int
    created_at: datetime
    erased_at: datetime
    reason: str


# --- what an entry holds -------------------------------------------------------------------------------------
def ledger_key() -> bytes:
    """Return the HMAC key: ERASURE_LEDGER_KEY, else one derived from SECRET_KEY (system check users.W011 warns)."""
    if settings.ERASURE_LEDGER_KEY:
        return settings.ERASURE_LEDGER_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"signup-erasure-ledger", hashlib.sha256).digest()


def address_hmac(address: str) -> str:
    """Return the ledger's keyed HMAC of an address (stripped and lower-cased, as uniqueness compares it)."""
    return hmac.new(ledger_key(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


def name_for(signup_id: int, erased_at: datetime) -> str:
    """Return the entry's object name: sorted by erasure time, unique per erasure."""
    return f"{PREFIX}{erased_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{int(signup_id)}.json"


def make_entry(*, address: str, signup_id: int, created_at: datetime, erased_at: datetime, reason: str) -> dict:
    """Return the entry's document (JSON-ready: it travels through the queue's arguments first)."""
    return {
        "v": VERSION,
        "address": address_hmac(address),
        "signup_id": int(signup_id),
        "created_at": created_at.astimezone(UTC).isoformat(),
        "erased_at": erased_at.astimezone(UTC).isoformat(),
        "reason": reason,
    }


def parse(name: str, body: bytes) -> Entry:
    doc = json.loads(body)
    return Entry(name=name, address=doc["address"], signup_id=int(doc["signup_id"]),
                 created_at=datetime.fromisoformat(doc["created_at"]),
                 erased_at=datetime.fromisoformat(doc["erased_at"]), reason=doc["reason"])  # fmt: skip


# --- the store: S3 with Object Lock, or a folder ---------------------------------------------------------------
def client():
    """Return the process's one S3 client for the ledger, built on first use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                session = boto3.session.Session()  # not thread-safe: one per client, under the lock
                _client = session.client("s3", region_name=settings.AWS_REGION or None, config=CLIENT_CONFIG)
    return _client


def reset_client() -> None:
    """Forget the client (tests point AWS_ENDPOINT_URL elsewhere between cases)."""
    global _client
    with _client_lock:
        _client = None


def write(name: str, entry: dict) -> str:
    """Write entry `name` once; return "written", or "already there" (a retry). Raises LedgerUnavailable."""
    body = json.dumps(entry, sort_keys=True).encode()
    if settings.ERASURE_LEDGER_BUCKET:
        return _write_s3(name, body)
    return _write_folder(name, body)


def _write_s3(name: str, body: bytes) -> str:
    retain = datetime.now(UTC) + timedelta(days=settings.ERASURE_LEDGER_RETAIN_DAYS)
    try:
        client().put_object(Bucket=settings.ERASURE_LEDGER_BUCKET, Key=name, Body=body, IfNoneMatch="*",
                            ContentType="application/json", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=retain)  # fmt: skip
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "ConditionalRequestConflict"}:
            return "already there"
        raise LedgerUnavailable(f"S3 refused the entry ({exc.response.get('Error', {}).get('Code')})") from None
    except BotoCoreError as exc:
        raise LedgerUnavailable(f"S3 unreachable ({type(exc).__name__})") from None
    return "written"


def _write_folder(name: str, body: bytes) -> str:
    path = Path(settings.ERASURE_LEDGER_DIR) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(body)
        os.chmod(tmp, 0o444)  # append-only by convention: nothing here rewrites an entry
        try:
            os.link(tmp, path)  # atomic, and fails when the name exists: never a half-written or replaced entry
        except FileExistsError:
            return "already there"
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise LedgerUnavailable(f"ledger folder not writable ({exc.strerror})") from None
    return "written"


def names() -> Iterator[list[str]]:
    """Yield the ledger's entry names, oldest first, a page (up to 1,000) at a time. Raises LedgerUnavailable."""
    if not settings.ERASURE_LEDGER_BUCKET:
        folder = Path(settings.ERASURE_LEDGER_DIR) / PREFIX
        found = sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []
        for i in range(0, len(found), 1000):
            yield [PREFIX + n for n in found[i : i + 1000]]
        return
    try:
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=settings.ERASURE_LEDGER_BUCKET,
                                                                   Prefix=PREFIX)  # fmt: skip
        for page in pages:
            yield [item["Key"] for item in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as exc:
        raise LedgerUnavailable(f"S3 list failed ({type(exc).__name__})") from None


def read(name: str) -> Entry:
    """Return one entry. Raises LedgerUnavailable."""
    if not settings.ERASURE_LEDGER_BUCKET:
        try:
            return parse(name, (Path(settings.ERASURE_LEDGER_DIR) / name).read_bytes())
        except OSError as exc:
            raise LedgerUnavailable(f"ledger entry unreadable ({exc.strerror})") from None
    try:
        body = client().get_object(Bucket=settings.ERASURE_LEDGER_BUCKET, Key=name)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise LedgerUnavailable(f"S3 get failed ({type(exc).__name__})") from None
    return parse(name, body)


# --- restore detection ----------------------------------------------------------------------------------------
def unknown_names() -> Iterator[str]:
    """Yield the ledger's names the database does not know (after a restore: the erasures it lost)."""
    for page in names():
        known = set(Tombstone.objects.filter(name__in=page).values_list("name", flat=True))
        yield from (name for name in page if name not in known)


class _RestoreCheck:
    """The process's cached answer to "was the database restored behind the ledger's back?"."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: bool | None = None  # None: never checked successfully
        self.checked_at = 0.0
        self.error = ""

    def get(self) -> bool | None:
        max_age = PENDING_RECHECK_SECONDS if self.pending else settings.ERASURE_LEDGER_CHECK_SECONDS
        if self.pending is not None and time.monotonic() - self.checked_at < max_age:
            return self.pending
        with self.lock:
            if self.pending is None or time.monotonic() - self.checked_at >= max_age:
                self._check()
        return self.pending

    def _check(self) -> None:
        try:
            pending = next(unknown_names(), None) is not None
        except LedgerUnavailable as exc:
            self.error = str(exc)
            logger.warning("erasure ledger: restore check failed (%s)", exc)
            return  # keep the last answer; None (unknown) until one check succeeds
        if pending != self.pending:
            log = logger.error if pending else logger.info
            log("erasure ledger: %s", "it names erasures this database does not know: restored? run "
                "`manage.py reapply_erasures`" if pending else "every entry is known to this database")  # fmt: skip
        self.pending, self.checked_at, self.error = pending, time.monotonic(), ""

    def peek(self) -> dict:
        """Return the last answer without waiting (pages): a stale one is refreshed in a background thread."""
        max_age = PENDING_RECHECK_SECONDS if self.pending else settings.ERASURE_LEDGER_CHECK_SECONDS
        if (self.pending is None or time.monotonic() - self.checked_at >= max_age) and not self.lock.locked():
            threading.Thread(target=self._refresh, name="erasure-ledger-check", daemon=True).start()
        return {"restore_pending": self.pending, "error": self.error}

    def _refresh(self) -> None:
        try:
            self.get()
        except Exception as exc:  # a database error: the page keeps the last answer
            self.error = type(exc).__name__
        finally:
            connections.close_all()  # this thread's own connections

    def reset(self) -> None:
        with self.lock:
            self.pending, self.checked_at, self.error = None, 0.0, ""


restore_check = _RestoreCheck()


def restore_pending() -> bool | None:
    """Return True when the ledger names erasures this database does not know (a restore), None if unknown yet."""
    return restore_check.get()
