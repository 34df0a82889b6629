"""The site's URLs plus two views for the GET-retry tests (used with override_settings(ROOT_URLCONF=...))."""

from django.db import connections
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path

from project.db.state import use_primary
from project.urls import urlpatterns as site_urlpatterns
from users.models import Signup

_NAMES = engines["django"].from_string("{% for s in signups %}<li>{{ s.full_name }}</li>{% endfor %}")


def lazy_list(request):
    """Like a generic ListView: the queryset is evaluated while the TemplateResponse renders."""
    return TemplateResponse(request, _NAMES, {"signups": Signup.objects.order_by("id")})


def primary_dies(request):
    """Read from the replica, then lose the primary's connection mid-request and query it again."""
    names = list(Signup.objects.values_list("full_name", flat=True))
    with use_primary():
        Signup.objects.exists()  # the primary connection is open and health-checked
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        Signup.objects.count()  # raises: that connection is gone
    return TemplateResponse(request, _NAMES, {"signups": names})


urlpatterns = [
    path("test/lazy-list/", lazy_list),
    path("test/primary-dies/", primary_dies),
    *site_urlpatterns,
]
