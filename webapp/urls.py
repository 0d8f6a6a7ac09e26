"""URL map of NAS Studio."""

from django.contrib import admin
from django.urls import include, path

from webapp import health
from webapp.accounts.views import AdminLoginView
from webapp.api.views import urls as api_urls

urlpatterns = [
    # Before admin.site.urls, so the admin's log-in is the throttled one.
    path("admin/login/", AdminLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", api_urls()),
    path("ops/", include("webapp.operations.urls")),
    path("accounts/", include("webapp.accounts.urls")),
    path("searches/", include("webapp.searches.urls")),
    path("", include("webapp.datasets.urls")),
]
