"""Everything under /api/v1/: resources, schema and docs, token management, inbound webhooks."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from portal.api import problems
from portal.api.api import TokenViewSet

app_name = "api"

tokens = SimpleRouter(trailing_slash=True)
tokens.register("tokens", TokenViewSet, basename="tokens")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script separately: no inline script, as CSP requires.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("webhooks/", include("portal.webhooks.urls")),
    path("", include(tokens.urls)),
    path("", include("portal.api.routes")),
    # Last: whatever no route above serves is a problem document, never an HTML page.
    re_path(r"", problems.unrouted, name=problems.UNROUTED),
]
