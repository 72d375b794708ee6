"""/api/v1/: every app's endpoints, the OpenAPI schema and its documentation
page (Swagger UI served from the project's own static files)."""

from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.api import AnonThrottle

app_name = "api"


class SchemaView(SpectacularAPIView):
    throttle_classes = [AnonThrottle]


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request, path=""):
    """Unknown API paths answer in the API's JSON error format."""
    raise exceptions.NotFound()


urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include("registry.api.urls")),
    path("", include("estimation.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("public.api.urls")),
    re_path(r"^(?P<path>.*)$", not_found, name="not-found"),
]
