"""The API's own endpoints: its OpenAPI schema, and JSON 404s for unknown
paths."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from api.throttles import AnonThrottle


class SchemaView(SpectacularAPIView):
    throttle_classes = [AnonThrottle]


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request, path=""):
    """Unknown API paths answer in the API's JSON error format."""
    raise exceptions.NotFound()
