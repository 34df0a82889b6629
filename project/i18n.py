"""The visitor's language on the public side; English on the staff pages. Every rule of the choice is here.

1. Django's own order (translation.get_language_from_request): the language cookie, set by the switcher
   (users/language.py), then Accept-Language, then LANGUAGE_CODE; only languages in LANGUAGES.
2. No language prefixes in URLs: one canonical URL per page, and the emailed links need none (an email's
   language comes from the person's row, users.Signup.language, not from the link).
3. The staff pages (the admin at ADMIN_URL, /ops/) stay English, whatever the browser asks.
4. Responses vary on Accept-Language (Django) and Cookie (the switcher's cookie), so no shared cache serves
   one visitor's language to another.
Cost: a cookie read and a cached parse of Accept-Language per request, no I/O (see the README's bench).
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.middleware import locale
from django.utils import translation
from django.utils.cache import patch_vary_headers


@functools.cache
def _staff_prefixes() -> tuple[str, ...]:
    return ("/" + settings.ADMIN_URL.lstrip("/"), "/ops/")


class LocaleMiddleware(locale.LocaleMiddleware):
    """Django's LocaleMiddleware, except English on staff pages and a Vary on the language cookie."""

    def process_request(self, request) -> None:
        if request.path_info.startswith(_staff_prefixes()):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(self, request, response):
        response = super().process_response(request, response)
        patch_vary_headers(response, ("Cookie",))
        return response
