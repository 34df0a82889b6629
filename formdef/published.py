"""The published form: which fields and topics the public form shows, read without a database query per request.

1. Staff change Field and Topic rows (the admin); `publish(by)` then writes a FormVersion: a snapshot of every
   active field and topic in every language. Versions are never changed afterwards, so a version, once read,
   is kept by the process for its life (`get`).
2. The current version's id is a pointer in the cache (Redis), set when a version commits. Each process
   looks at it at most once every CHECK_SECONDS (`current`); in between it serves what it holds. So a change
   reaches every process within CHECK_SECONDS, and a request pays no database query and at most one cache GET
   a second per process.
3. Redis unreachable or the pointer evicted: the pointer is read from the database instead (one indexed row,
   still at most once every CHECK_SECONDS) and put back in the cache.
4. A rendered form carries its version's id; its submission is judged by that version (`get`), so a change
   made while the form was open never changes what the person's answers mean. A version a replica does not
   have yet is read from the primary.
5. Nothing published yet: version 0, the fixed fields only.
6. The pointer is "<id>:<published_at in µs>". Ids only grow, except after a point-in-time restore (or a test's
   flushed database), which gives the ids of lost versions again: a pointer below an id already read, or naming
   a read id with another stamp, makes the process forget every version it read (`_drop_reused`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, router, transaction

from formdef.models import Field, FormVersion, Topic

logger = logging.getLogger("formdef")

POINTER_KEY = "formdef:current"
CHECK_SECONDS = 1.0
KEPT_VERSIONS = 64  # versions a process keeps read (each a few KB); more: the oldest are read again if asked


@dataclass(frozen=True)
class Definition:
    """One published version: its fields and topics as plain dicts (see `snapshot` for their keys)."""

    id: int
    fields: tuple[dict, ...] = ()
    topics: tuple[dict, ...] = ()
    _by_key: dict = field(default_factory=dict, compare=False, repr=False)
    stamp: int = 0  # when it was published, in microseconds: tells a reused id (a restore) from the original

    @classmethod
    def from_snapshot(cls, version_id: int, snapshot: dict, stamp: int = 0) -> Definition:
        fields, topics = tuple(snapshot.get("fields", ())), tuple(snapshot.get("topics", ()))
        by_key = {("field", f["key"]): f for f in fields} | {("topic", t["key"]): t for t in topics}
        return cls(version_id, fields, topics, by_key, stamp)

    def field(self, key: str) -> dict | None:
        return self._by_key.get(("field", key))

    def topic(self, key: str) -> dict | None:
        return self._by_key.get(("topic", key))

    @property
    def public_topics(self) -> tuple[dict, ...]:
        return tuple(t for t in self.topics if t["public"])


BARE = Definition(0)
_versions: dict[int, Definition] = {0: BARE}
_held: tuple[float, Definition] | None = None  # (monotonic time of the last look at the pointer, the version)
_lock = threading.Lock()


def wording_version(topic_key: str, language: str, words: str) -> str:
    """Return the version of a topic's consent words in one language: "<topic>:<language>:<digest>"."""
    return f"{topic_key}:{language}:{hashlib.sha256(words.encode()).hexdigest()[:8]}"


def snapshot(using: str | None = None) -> dict:
    """Return the active fields and topics as a JSON-ready dict, in form order (read from `using`)."""
    languages = [code for code, _name in settings.LANGUAGES]
    fields = [
        {
            "key": f.key,
            "kind": f.kind,
            "required": f.required,
            "label": f.label,
            "help": f.help_text or {},
            "choices": f.choices or [],
            "max_length": f.max_length,
            "min": None if f.min_value is None else str(f.min_value),
            "max": None if f.max_value is None else str(f.max_value),
        }
        for f in Field.objects.db_manager(using).filter(active=True).order_by("position", "id")
    ]
    topics = [
        {
            "id": t.pk,  # the signup's statement stores memberships by id (users/signup_store.py)
            "key": t.key,
            "public": t.public,
            "name": t.name,
            "description": t.description or {},
            "consent": t.consent,
            "wording_version": {lang: wording_version(t.key, lang, t.consent.get(lang, "")) for lang in languages},
        }
        for t in Topic.objects.db_manager(using).filter(active=True).order_by("position", "id")
    ]
    return {"fields": fields, "topics": topics}


def publish(by: str) -> FormVersion:
    """Write the current fields and topics as a new version; every process serves it within CHECK_SECONDS."""
    using = router.db_for_write(FormVersion)
    with transaction.atomic(using=using):
        version = FormVersion.objects.using(using).create(published_by=by, snapshot=snapshot(using))
        transaction.on_commit(lambda: _point_to(version.pk, _stamp(version.published_at)), using=using)
    logger.info("form version %s published by %s", version.pk, by)
    return version


def _stamp(published_at) -> int:
    return int(published_at.timestamp() * 1_000_000)


def _point_to(version_id: int, stamp: int) -> None:
    global _held
    cache.set(POINTER_KEY, f"{version_id}:{stamp}", timeout=None)
    _held = (time.monotonic(), get(version_id) or BARE)


def current() -> Definition:
    """Return the version new forms are rendered with (see the module docstring for how fresh it is)."""
    global _held
    held = _held
    if held is not None and time.monotonic() - held[0] < CHECK_SECONDS:
        return held[1]
    with _lock:  # one thread per process looks; the others keep serving what is held
        held = _held
        if held is not None and time.monotonic() - held[0] < CHECK_SECONDS:
            return held[1]
        pointer = _parse(cache.get(POINTER_KEY))
        if pointer is None:
            pointer = _latest()
            cache.set(POINTER_KEY, f"{pointer[0]}:{pointer[1]}", timeout=None)
        _drop_reused(*pointer)
        definition = get(pointer[0]) or (held[1] if held else BARE)
        _held = (time.monotonic(), definition)
        return definition


def get(version_id: int) -> Definition | None:
    """Return a published version by id (kept once read), or None when there is no such version."""
    definition = _versions.get(version_id)
    if definition is not None:
        return definition
    row = None
    columns = ("snapshot", "published_at")
    # The primary by its alias: asking the router for the write alias would mark this request as having
    # written, and send its later reads (an export, a list) to the primary.
    for alias in dict.fromkeys([router.db_for_read(FormVersion), DEFAULT_DB_ALIAS]):
        row = FormVersion.objects.using(alias).filter(pk=version_id).values_list(*columns).first()
        if row is not None:
            break
    if row is None:
        return None
    if len(_versions) >= KEPT_VERSIONS:
        _versions.clear()
        _versions[0] = BARE
    definition = _versions[version_id] = Definition.from_snapshot(version_id, row[0], _stamp(row[1]))
    return definition


def _latest() -> tuple[int, int]:
    """Return the newest version's (id, stamp), (0, 0) when none was published."""
    # The pointer decides what is current: never a lagging replica (the alias, not the router: see `get`).
    row = FormVersion.objects.using(DEFAULT_DB_ALIAS).order_by("-id").values_list("id", "published_at").first()
    return (row[0], _stamp(row[1])) if row else (0, 0)


def _parse(pointer) -> tuple[int, int] | None:
    try:
        version_id, stamp = str(pointer).split(":")
        return int(version_id), int(stamp)
    except ValueError:  # None (evicted, Redis down) or a value from another release
        return None


def _drop_reused(version_id: int, stamp: int) -> None:
    """Forget every version read when the ids were reused: a newer id kept, or this id published anew.

    Ids only grow, so the current id is never below one already read, except after a point-in-time restore
    (the versions published after the restored moment are gone, and their ids are given again) or a test's
    flushed database.
    """
    kept = _versions.get(version_id)
    if (kept is not None and version_id and kept.stamp != stamp) or max(_versions) > version_id:
        logger.warning("form version ids were reused (a restore?): the versions this process read are dropped")
        _versions.clear()
        _versions[0] = BARE


def forget() -> None:
    """Drop what this process holds (tests; a process otherwise refreshes by itself)."""
    global _held
    _held = None
    _versions.clear()
    _versions[0] = BARE
