from django.conf import settings
from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Signups — staff"
admin.site.site_title = "Signups admin"

urlpatterns = [
    path("", include("users.urls")),
    path("", include("ops.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "project.views.bad_request"
