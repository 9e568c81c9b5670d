"""Everything under /api/v1/: resources, schema and docs, token management, inbound webhooks."""

from django.urls import include, path

app_name = "api"

urlpatterns = [
    path("webhooks/", include("portal.webhooks.urls")),
    path("", include("portal.api.routes")),
]
