"""Signed links in emails, and the cookies they are exchanged for: one TimestampSigner per purpose.

1. A token carries only the signup id, a purpose-bound check value and the person's link version, never an
   address or a name.
2. Each purpose has its own salt: a confirm token is refused as a manage token, and the reverse. The cookie an
   emailed link is exchanged for (users/selfservice.py) is a purpose of its own: its own salt per link kind,
   so neither a cookie nor a link opens what the other kind opens.
3. Each purpose has its own lifetime (CONFIRM_TTL, MANAGE_TTL seconds; the cookies SELF_SERVICE_COOKIE_TTL);
   the unsubscribe link lives as long as the manage link, since both go out in the same email.
4. A token is bound to the address it was sent to: after erasure (the address changes) it opens nothing.
5. A token is bound to the person's link version (Signup.link_version): "send me a new link", withdrawal and
   erasure raise it, and every link and cookie made before is refused (`opens`). Links mailed before versions
   existed carry none and count as version 0.
6. A confirm token is single-use by its effect: once confirmed_at is set, the link answers "already used".
7. A topic's unsubscribe link (List-Unsubscribe of a topic's mailing, and the topic-filtered exports for an
   outside mailing tool) names the signup and the topic, and leaves that topic only. It is bound to the address
   (erasure kills it) but not to the link version, and lives TOPIC_UNSUBSCRIBE_TTL (a year by default): a
   mailing tool sends it for months, and "send me a new link" must not break every list's unsubscribe button.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

CONFIRM = "confirm"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
TOPIC_UNSUBSCRIBE = "topic-unsubscribe"
_SALTS = {CONFIRM: "users.tokens.confirm", MANAGE: "users.tokens.manage", UNSUBSCRIBE: "users.tokens.unsubscribe",
          TOPIC_UNSUBSCRIBE: "users.tokens.topic-unsubscribe"}  # fmt: skip
_COOKIE_SALTS = {purpose: f"{salt}.cookie" for purpose, salt in _SALTS.items()}


class BadToken(Exception):
    """The link is tampered with, expired, for another purpose or another address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid": the page says which


@dataclass(frozen=True)
class Claim:
    signup_id: int
    check: str
    version: int = 0


def _signer(purpose: str, cookie: bool) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=(_COOKIE_SALTS if cookie else _SALTS)[purpose])


def _max_age(purpose: str, cookie: bool) -> int:
    if cookie:
        return settings.SELF_SERVICE_COOKIE_TTL
    return settings.CONFIRM_TTL if purpose == CONFIRM else settings.MANAGE_TTL


def address_check(purpose: str, email: str) -> str:
    """Return a short keyed digest of the address: the token opens nothing once the address changes."""
    return salted_hmac(_SALTS[purpose], email.lower(), algorithm="sha256").hexdigest()[:16]


def make(purpose: str, signup_id: int, email: str, version: int = 0, *, cookie: bool = False) -> str:
    """Return a URL-safe signed token for `purpose` naming signup `signup_id` at link version `version`."""
    return _signer(purpose, cookie).sign_object([signup_id, address_check(purpose, email), version])


def for_signup(purpose: str, signup, *, cookie: bool = False) -> str:
    """Return a token for `purpose` naming this person at their current link version."""
    return make(purpose, signup.pk, signup.email, signup.link_version, cookie=cookie)


def read(purpose: str, token: str, *, cookie: bool = False) -> Claim:
    """Return the token's claim, or raise BadToken (expired or invalid). Does not read the database."""
    try:
        value = _signer(purpose, cookie).unsign_object(token, max_age=_max_age(purpose, cookie))
    except signing.SignatureExpired:
        raise BadToken("expired") from None
    except (signing.BadSignature, ValueError, UnicodeError):
        raise BadToken("invalid") from None
    if not (isinstance(value, list) and len(value) in (2, 3) and isinstance(value[1], str)):
        raise BadToken("invalid")
    signup_id, check, version = [*value, 0][:3]  # a link mailed before versions existed: version 0
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (signup_id, version)):
        raise BadToken("invalid")
    return Claim(signup_id=signup_id, check=check, version=version)


def matches(purpose: str, claim: Claim, email: str) -> bool:
    """Say whether the claim was made for this address (constant time)."""
    return constant_time_compare(claim.check, address_check(purpose, email))


def opens(purpose: str, claim: Claim, signup) -> str:
    """Return "" when the claim opens this person's pages, else why not ("invalid", or "expired" when revoked)."""
    if signup is None or signup.is_erased or not matches(purpose, claim, signup.email):
        return "invalid"
    if claim.version != signup.link_version:  # a newer link was sent, or consent withdrawn: this one is revoked
        return "expired"
    return ""


def make_topic(signup, topic_id: int) -> str:
    """Return a signed token that leaves topic `topic_id` for this person (rule 7: not bound to the link version)."""
    check = address_check(TOPIC_UNSUBSCRIBE, signup.email)
    return _signer(TOPIC_UNSUBSCRIBE, False).sign_object([signup.pk, check, topic_id])


def read_topic(token: str) -> tuple[Claim, int]:
    """Return (the claim, the topic id) of a topic's unsubscribe token, or raise BadToken (no database read)."""
    try:
        value = _signer(TOPIC_UNSUBSCRIBE, False).unsign_object(token, max_age=settings.TOPIC_UNSUBSCRIBE_TTL)
    except signing.SignatureExpired:
        raise BadToken("expired") from None
    except (signing.BadSignature, ValueError, UnicodeError):
        raise BadToken("invalid") from None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[1], str)):
        raise BadToken("invalid")
    signup_id, check, topic_id = value
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 2**63 for n in (signup_id, topic_id)):
        raise BadToken("invalid")
    return Claim(signup_id=signup_id, check=check), topic_id
