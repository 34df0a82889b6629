"""A URL with a token whose view fails, for tests/project/test_logging.py (a 500 must not log the token)."""

from django.urls import include, path


def explode(request, token: str):
    raise ValueError(f"could not open {token} for {request.get_full_path()}")


urlpatterns = [
    path("boom/<str:token>/", explode, name="boom"),
    path("", include("project.urls")),
]
