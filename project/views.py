"""Our own error handlers (project/urls.py), for requests Django could not even read."""

from django.http import HttpResponseBadRequest
from django.template import loader

from api import problems

API_PREFIX = "/api/"


def bad_request(request, exception):
    """Answer 400 with our page (the API: a problem document), touching nothing the request carried.

    Django's default handler is wrapped in requires_csrf_token, which reads request.POST again: a body it
    cannot decode (a form declared `charset=latin-1`, which Django refuses) raised a second time inside the
    handler and reached gunicorn as a bare 500 with two tracebacks. The API answers every error as RFC 9457
    problem details, this one too (too many query parameters, a query Django refuses to parse).
    """
    if request.path.startswith(API_PREFIX):
        return problems.response(400, "Bad request", "The request could not be read.")
    return HttpResponseBadRequest(loader.render_to_string("400.html"))
