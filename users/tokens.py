"""Signed links in emails: one TimestampSigner per purpose, each with its own salt and lifetime.

1. A token carries only the signup id and a purpose-bound check value, never an address or a name.
2. Each purpose has its own salt: a confirm token is refused as a manage token, and the reverse.
3. Each purpose has its own lifetime (CONFIRM_TTL, MANAGE_TTL seconds); the unsubscribe link lives as
   long as the manage link, since both go out in the same email.
4. A token is bound to the address it was sent to: after erasure (the address changes) it opens nothing.
5. A confirm token is single-use by its effect: once confirmed_at is set, the link answers "already used".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

CONFIRM = "confirm"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
_SALTS = {CONFIRM: "users.tokens.confirm", MANAGE: "users.tokens.manage", UNSUBSCRIBE: "users.tokens.unsubscribe"}


class BadToken(Exception):
    """The link is tampered with, expired, for another purpose or another address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid": the page says which


@dataclass(frozen=True)
class Claim:
    signup_id: int
    check: str


def _max_age(purpose: str) -> int:
    return settings.CONFIRM_TTL if purpose == CONFIRM else settings.MANAGE_TTL


def address_check(purpose: str, email: str) -> str:
    """Return a short keyed digest of the address: the token opens nothing once the address changes."""
    return salted_hmac(_SALTS[purpose], email.lower(), algorithm="sha256").hexdigest()[:16]


def make(purpose: str, signup_id: int, email: str) -> str:
    """Return a URL-safe signed token for `purpose` naming signup `signup_id`."""
    signer = signing.TimestampSigner(salt=_SALTS[purpose])
    return signer.sign_object([signup_id, address_check(purpose, email)])


def read(purpose: str, token: str) -> Claim:
    """Return the token's claim, or raise BadToken (expired or invalid). Does not read the database."""
    signer = signing.TimestampSigner(salt=_SALTS[purpose])
    try:
        value = signer.unsign_object(token, max_age=_max_age(purpose))
    except signing.SignatureExpired:
        raise BadToken("expired") from None
    except (signing.BadSignature, ValueError, UnicodeError):
        raise BadToken("invalid") from None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        raise BadToken("invalid")
    return Claim(signup_id=value[0], check=value[1])


def matches(purpose: str, claim: Claim, email: str) -> bool:
    """Say whether the claim was made for this address (constant time)."""
    from django.utils.crypto import constant_time_compare

    return constant_time_compare(claim.check, address_check(purpose, email))
