"""Our own error handlers (project/urls.py), for requests Django could not even read."""

from django.http import HttpResponseBadRequest
from django.template import loader


def bad_request(request, exception):
    """Answer 400 with our page, touching nothing the request carried.

    Django's default handler is wrapped in requires_csrf_token, which reads request.POST again: a body it
    cannot decode (a form declared `charset=latin-1`, which Django refuses) raised a second time inside the
    handler and reached gunicorn as a bare 500 with two tracebacks.
    """
    return HttpResponseBadRequest(loader.render_to_string("400.html"))
