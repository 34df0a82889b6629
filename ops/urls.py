from django.urls import path

from ops import views

app_name = "ops"
urlpatterns = [
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("ops/", views.ops_dashboard, name="dashboard"),
    path("ops/data.json", views.ops_data, name="data"),
]
