from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from api.v1 import api
from users import privacy, webhooks

admin.site.site_header = "Signups — staff"
admin.site.site_title = "Signups admin"

urlpatterns = [
    path("", include("users.urls")),
    path("privacy/", privacy.privacy, name="privacy"),
    path("webhooks/ses/", webhooks.ses_events, name="ses_events"),
    path("api/v1/", api.urls),  # the public API (api/v1.py)
    path("", include("ops.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "project.views.bad_request"
