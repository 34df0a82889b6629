"""URLs for `bench admin` only: our admin, and a stock ModelAdmin of the same model on its own AdminSite."""

from django.contrib import admin
from django.urls import path

from users.admin import SignupAdmin
from users.models import Signup

stock_site = admin.AdminSite(name="stock")


@admin.register(Signup, site=stock_site)
class StockSignupAdmin(admin.ModelAdmin):
    """What `admin.site.register(Signup)` with the same columns, filters and search would give."""

    list_display = ["full_name", "email", "country", "consent", "created_at"]
    list_filter = SignupAdmin.list_filter
    search_fields = SignupAdmin.search_fields
    ordering = SignupAdmin.ordering
    list_per_page = SignupAdmin.list_per_page


urlpatterns = [
    path("admin/", admin.site.urls),
    path("stock/", stock_site.urls),
]
