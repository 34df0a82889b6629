"""Free text as we store it: NFC, single spaces, no characters that have no place in what people type.

Used by the signup form's fixed fields (users/forms.py) and by the fields staff add (formdef/formfields.py).
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_ALLOWED_FORMAT_CHARS = {"\u200c", "\u200d"}  # ZWNJ/ZWJ are part of correct spelling in several scripts


def clean_text(value: str, label) -> str:
    """Normalise free text (NFC, single spaces) and refuse characters that have no place in a name."""
    value = unicodedata.normalize("NFC", value)
    for ch in value:
        category = unicodedata.category(ch)
        if (
            ch == "\ufffd"
            or category in {"Cc", "Cs", "Co", "Cn"}
            or (category == "Cf" and ch not in _ALLOWED_FORMAT_CHARS)
        ):
            raise ValidationError(
                _("%(what)s contains a character we cannot store (U+%(code)s)."),
                params={"what": label, "code": f"{ord(ch):04X}"},
            )
    return " ".join(value.split())
