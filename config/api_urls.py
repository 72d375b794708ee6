"""/api/v1/: every app's endpoints, the OpenAPI schema and its documentation
page (Swagger UI served from the project's own static files)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from api.views import SchemaView, not_found

app_name = "api"

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include("registry.api.urls")),
    path("", include("estimation.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("public.api.urls")),
    re_path(r"^(?P<path>.*)$", not_found, name="not-found"),
]
