"""The visitor's language on the public side; English on the staff pages. Every rule of the choice is here.

1. Django's own order (translation.get_language_from_request): the language cookie, set by the switcher
   (users/language.py), then Accept-Language, then LANGUAGE_CODE; only languages in LANGUAGES.
2. No language prefixes in URLs: one canonical URL per page, and the emailed links need none (an email's
   language comes from the person's row, users.Signup.language, not from the link).
3. The staff pages (project.http.staff_prefixes: the admin, /ops/) stay English, whatever the browser asks.
4. Responses vary on Accept-Language (Django) and Cookie (the switcher's cookie), so no shared cache serves
   one visitor's language to another.
Cost: a cookie read and a cached parse of Accept-Language per request, no I/O (see docs/languages.md).
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers

from project.http import staff_prefixes

VARY = "Accept-Language, Cookie"


class LocaleMiddleware:
    """Activate the visitor's language for the request (English on staff pages); say which, and vary on it.

    Not a subclass of Django's LocaleMiddleware: that one also serves language-prefixed URLs (looking for a
    prefix in the path twice per request), which we do not use; this costs a quarter of it (docs/languages.md).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(staff_prefixes()):
            language = settings.LANGUAGE_CODE
        else:
            language = translation.get_language_from_request(request)  # cookie, Accept-Language, default
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if "Vary" in response.headers:
            patch_vary_headers(response, ("Accept-Language", "Cookie"))
        else:
            response.headers["Vary"] = VARY
        # The view's language, which the switcher (users/language.py) may have changed.
        response.headers.setdefault("Content-Language", translation.get_language())
        return response
