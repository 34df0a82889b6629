"""The consent wording and its version per language: a version names the exact words the person was shown.

1. CONSENT_TEXT is translated like every other string. A version is "<CONSENT_VERSION>:<language>:<digest>",
   the digest being the first 8 hex digits of SHA-256 of the words in that language. Bump CONSENT_VERSION
   when the meaning changes; a reworded translation changes its digest by itself.
2. The signup stores the version of the language the form was shown in (Signup.consent_version), and every
   ledger event repeats it (ConsentEvent.wording_version).
3. wording(version) gives back the words while this code still ships them (same language, same digest);
   otherwise None, and the catalogue's history (locale/<language>/LC_MESSAGES/django.po in git) holds them.
   Versions from before languages ("2026-11-v1") are the English text of that version.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

CONSENT_VERSION = "2026-11-v1"  # bump whenever the meaning of CONSENT_TEXT changes
CONSENT_TEXT = _("Yes, you may contact me by email about this service. I can withdraw this at any time.")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@functools.cache
def version(language: str) -> str:
    """Return the wording version of the consent text in `language`."""
    with translation.override(language):
        return f"{CONSENT_VERSION}:{language}:{_digest(str(CONSENT_TEXT))}"


def current_version() -> str:
    return version(translation.get_language() or settings.LANGUAGE_CODE)


def wording(version_id: str) -> str | None:
    """Return the exact words of a stored wording version, or None when this code no longer ships them."""
    base, _sep, rest = version_id.partition(":")
    if base != CONSENT_VERSION:
        return None
    language = rest.partition(":")[0] or settings.LANGUAGE_CODE
    if language not in dict(settings.LANGUAGES) or (rest and version(language) != version_id):
        return None
    with translation.override(language):
        return str(CONSENT_TEXT)
