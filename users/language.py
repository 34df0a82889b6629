"""The language switcher: a POST form at the foot of every public page, working without JavaScript.

1. POST language=<code> (one of LANGUAGES): the choice is kept in the language cookie (a year, HttpOnly,
   SameSite=Lax, `__Host-` and Secure under HTTPS) and the visitor goes back to `next`, a path on this
   site (anything else: /). Django's own set_language does the same, minus rule 2.
2. On the pages with a form to type in (signup, "send me my link") the switcher's buttons belong to that form
   (HTML form/formaction attributes), so what was typed travels along: the form is shown again, in the new
   language, with those values, and with its errors again (now in that language) when the page being left
   showed errors. Nothing is saved or sent.
3. No CSRF token: the switch changes one cookie of the visitor's own, and the landing page, which shared
   caches may keep, must carry no token. Cross-site, the worst anyone can do is change a visitor's language.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from formdef import published, topicfields
from users.forms import SignupForm
from users.selfservice import LinkForm

SHOWN_ERRORS = "shown_errors"  # a hidden field of the signup form while it shows errors


@never_cache
@csrf_exempt
@require_POST
def switch(request):
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest("Unknown language.")
    translation.activate(language)
    request.LANGUAGE_CODE = language
    target = _next(request)
    typed_forms = {reverse("users:signup"): ("users/signup.html", SignupForm),
                   reverse("users:send_link"): ("users/send_link.html", LinkForm)}  # fmt: skip
    if target in typed_forms and "email" in request.POST:
        response = _form_again(request, *typed_forms[target])
    else:
        response = redirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.LANGUAGE_COOKIE_SECURE or request.is_secure(),
    )
    return response


def _next(request) -> str:
    target = request.POST.get("next", "/")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe and target.startswith("/") else "/"


def _form_again(request, template: str, form_class):
    """Show the form in the new language with what was typed (and its errors, if it showed them)."""
    kwargs = {"definition": published.current()} if form_class is SignupForm else {}  # its topics (and fields)
    if request.POST.get(SHOWN_ERRORS):
        form = form_class(request.POST, **kwargs)
        form.is_valid()  # the errors, now in the new language
    else:
        initial = {name: request.POST.get(name, "") for name in form_class.base_fields}
        initial[topicfields.FIELD] = request.POST.getlist(topicfields.FIELD)  # the ticked topics stay ticked
        form = form_class(initial=initial, **kwargs)
    ctx = {"form": form}
    return render(request, template, ctx, status=400 if form.errors else 200)
