"""Webhook endpoint secrets encrypted at rest: Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`).

1. WEBHOOK_SECRET_KEYS (a secret setting, WEBHOOK_SECRET_KEYS_FILE in containers) is a comma-separated list of
   keys: the first encrypts, every one decrypts (MultiFernet). To rotate: put a new key first, deploy, run
   `manage.py rotate_webhook_keys` (every secret encrypted again under the first key), then drop the old key.
2. A key is any string of at least 32 characters (the Secrets Manager's random password serves as is); the
   Fernet key is its SHA-256, base64url-encoded.
3. Unset, one key is derived from SECRET_KEY, so `make run` needs nothing; outside local mode the system check
   api.W001 says to set it (rotating SECRET_KEY would otherwise make every endpoint's secret unreadable).
4. A stored value is "fernet:" and the token. One that no key opens (a key dropped too soon, a row written
   before the encryption migration) reads as an empty secret that keeps its token (Undecryptable): nothing is
   signed with it (the delivery attempt fails and says why), no page fails, and saving the row writes the token
   back unchanged.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


class Undecryptable(str):
    """A stored secret no configured key opens: empty as a string, its token kept for writing back."""

    token: str

    def __new__(cls, token: str) -> Undecryptable:
        value = super().__new__(cls, "")
        value.token = token
        return value


def keys() -> tuple[str, ...]:
    """Return the keys in use: WEBHOOK_SECRET_KEYS, else one derived from SECRET_KEY (local mode)."""
    return tuple(settings.WEBHOOK_SECRET_KEYS) or (f"webhook-secrets:{settings.SECRET_KEY}",)


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys])


def encrypt(plain: str) -> str:
    return PREFIX + _fernet(keys()).encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    """Return the plain secret, or an Undecryptable (empty) when no key opens `stored`."""
    if not stored.startswith(PREFIX):
        return Undecryptable(stored)
    try:
        return _fernet(keys()).decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except (InvalidToken, UnicodeError):
        return Undecryptable(stored)


def reencrypt(stored: str) -> str:
    """Return `stored` encrypted under the first key (MultiFernet.rotate); raise InvalidToken if no key opens it."""
    return PREFIX + _fernet(keys()).rotate(stored.removeprefix(PREFIX).encode()).decode()
