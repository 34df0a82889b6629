"""A person's topics: joining, confirming, leaving, and the links that leave one topic. Every rule is here.

1. The signup form's topics are stored with the signup, in its one statement (users/signup_store.py): a
   membership (SignupTopic) and a `given` event naming the topic and its wording version, per topic.
2. The double opt-in confirms them all (`confirm`): confirmed_at on each pending membership, a `confirmed`
   event per topic. Until then a membership is pending: not a member for exports, counts or mailings.
3. The preference centre (the manage page) switches topics (`switch`): leaving one stamps withdrawn_at and
   records `withdrawn` with the topic; joining one records `given` with the topic's words in the page's
   language, and is confirmed at once when the address is (it was proven by the double opt-in), pending
   otherwise. Joining again after leaving re-opens the same row (one row per person and topic).
4. A topic's unsubscribe link (users/tokens.py rule 7; RFC 8058 one-click) leaves that topic only (`leave`).
5. Withdrawing all consent (users/withdrawal.py) leaves every topic, each with its event (`leave_all`).
6. Erasure (users/erasure.py) deletes the memberships; the ledger keeps its events (when, which topic, which
   wording), holding no personal data, as it does for the form's consent.
7. Every change runs in the caller's transaction on the primary, on the person's locked row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from formdef.models import Topic
from formdef.topicfields import words
from users import tokens
from users.models import ConsentEvent, Signup, SignupTopic

logger = logging.getLogger("users")


@dataclass(frozen=True)
class Choice:
    """One line of the preference centre: a topic offered or held, and where the person stands in it."""

    key: str
    name: str
    description: str
    consent: str
    state: str  # "member", "pending" (not confirmed yet), "left", "" (never joined)

    @property
    def on(self) -> bool:
        return self.state in {"member", "pending"}


def _memberships(signup: Signup):
    return SignupTopic.objects.using(signup._state.db).filter(signup=signup).select_related("topic")


def _state(membership: SignupTopic | None) -> str:
    if membership is None:
        return ""
    if membership.withdrawn_at is not None:
        return "left"
    return "member" if membership.confirmed_at is not None else "pending"


def choices(signup: Signup, definition, language: str) -> list[Choice]:
    """Return the public topics of `definition` and every topic the person is or was in, in form order."""
    held = {m.topic.key: m for m in _memberships(signup)}
    lines = [
        Choice(t["key"], words(t["name"], language), words(t["description"], language),
               words(t["consent"], language), _state(held.pop(t["key"], None)))
        for t in definition.public_topics
    ]  # fmt: skip
    for key, m in held.items():  # hidden or inactive topics the person is in: shown so they can leave them
        if m.withdrawn_at is None:
            lines.append(Choice(key, words(m.topic.name, language), words(m.topic.description, language),
                                words(m.topic.consent, language), _state(m)))  # fmt: skip
    return lines


def confirm(signup: Signup, ip: str | None) -> int:
    """Confirm the person's pending topics with a `confirmed` event each (the double opt-in); return how many."""
    using, now = signup._state.db, timezone.now()
    pending = list(_memberships(signup).filter(confirmed_at__isnull=True, withdrawn_at__isnull=True))
    SignupTopic.objects.using(using).filter(pk__in=[m.pk for m in pending]).update(confirmed_at=now)
    ConsentEvent.objects.using(using).bulk_create(
        ConsentEvent(signup=signup, kind=ConsentEvent.CONFIRMED, at=now, ip=ip, topic_id=m.topic_id,
                     wording_version=m.wording_version)
        for m in pending
    )  # fmt: skip
    return len(pending)


def switch(signup: Signup, wanted: set[str], definition, language: str, ip: str | None) -> tuple[int, int]:
    """Make the person's topics `wanted` (keys); return (joined, left). Only the version's public topics or
    topics the person already holds can be joined; a key that is neither is ignored (the form offered it not)."""
    using, now = signup._state.db, timezone.now()
    held = {m.topic.key: m for m in _memberships(signup)}
    joined = left = 0
    for key, m in held.items():
        if m.withdrawn_at is None and key not in wanted:
            _leave(m, ip, now)
            left += 1
    for key in wanted:
        m = held.get(key)
        if m is not None and m.withdrawn_at is None:
            continue  # already in it
        offered = definition.topic(key)
        if offered is None or not offered["public"]:
            continue
        wording = (offered.get("wording_version") or {}).get(language, "")
        confirmed_at = now if signup.is_confirmed else None
        if m is None:
            SignupTopic.objects.using(using).create(signup=signup, topic_id=offered["id"], wording_version=wording,
                                                    chosen_at=now, confirmed_at=confirmed_at)  # fmt: skip
        else:
            m.chosen_at, m.confirmed_at, m.withdrawn_at, m.wording_version = now, confirmed_at, None, wording
            m.save(using=using, update_fields=["chosen_at", "confirmed_at", "withdrawn_at", "wording_version"])
        ConsentEvent.objects.using(using).create(signup=signup, kind=ConsentEvent.GIVEN, at=now, ip=ip,
                                                 topic_id=offered["id"], wording_version=wording)  # fmt: skip
        joined += 1
    if joined or left:
        logger.info("signup %s: topics switched (%d joined, %d left)", signup.pk, joined, left)
    return joined, left


def _leave(m: SignupTopic, ip: str | None, now) -> None:
    using = m._state.db
    SignupTopic.objects.using(using).filter(pk=m.pk).update(withdrawn_at=now)
    m.withdrawn_at = now
    ConsentEvent.objects.using(using).create(signup_id=m.signup_id, kind=ConsentEvent.WITHDRAWN, at=now, ip=ip,
                                             topic_id=m.topic_id, wording_version=m.wording_version)  # fmt: skip


def leave(signup: Signup, topic_id: int, ip: str | None) -> bool:
    """Leave one topic (its unsubscribe link); False when the person was not in it."""
    m = _memberships(signup).filter(topic_id=topic_id, withdrawn_at__isnull=True).first()
    if m is None:
        return False
    _leave(m, ip, timezone.now())
    logger.info("signup %s: left topic %s", signup.pk, topic_id)
    return True


def leave_all(signup: Signup, ip: str | None) -> int:
    """Leave every topic (consent withdrawn), each with its `withdrawn` event; return how many."""
    now = timezone.now()
    current = list(_memberships(signup).filter(withdrawn_at__isnull=True))
    for m in current:
        _leave(m, ip, now)
    return len(current)


def names(signup: Signup, language: str) -> list[str]:
    """Return the names, in `language`, of the topics the person chose and has not left (emails)."""
    return [words(m.topic.name, language) for m in _memberships(signup).filter(withdrawn_at__isnull=True)]


def unsubscribe_url(signup: Signup, topic: Topic | int) -> str:
    """Return the absolute URL that takes this person out of `topic` (GET: a page with a button; POST: one click)."""
    topic_id = topic if isinstance(topic, int) else topic.pk
    return settings.PUBLIC_BASE_URL + reverse("users:topic_unsubscribe", args=[tokens.make_topic(signup, topic_id)])


def list_unsubscribe_headers(signup: Signup, topic: Topic | int) -> dict[str, str]:
    """Return the RFC 2369 / RFC 8058 headers of a mailing about `topic`: unsubscribing leaves that topic only."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(signup, topic)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
