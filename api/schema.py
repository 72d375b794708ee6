"""The OpenAPI description of what every operation shares: the
Idempotency-Key header, strict decimal patterns and the error responses."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from api.idempotency import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    UNSAFE_METHODS,
    IdempotentMixin,
)


class ErrorFieldSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every error response."""

    code = serializers.CharField(help_text="Stable machine-readable code.")
    message = serializers.CharField(help_text="Translated by Accept-Language.")
    fields = serializers.DictField(
        child=ErrorFieldSerializer(many=True),
        required=False,
        help_text="Per input field, when the input was at fault.",
    )


ERROR_STATUSES = {
    "GET": ("401", "403", "404", "429"),
    "UNSAFE": ("400", "401", "403", "404", "409", "413", "415", "429"),
}


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The decimal strings ``field`` accepts. drf-spectacular's own pattern
    also matches "" and "-", which no DecimalField takes."""
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    whole, places = field.max_whole_digits, field.decimal_places
    integer = "0" if whole == 0 else rf"\d{{1,{whole}}}"
    if not places:
        return rf"^{sign}{integer}$"
    return rf"^{sign}(?:{integer}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the Idempotency-Key header and the error
    responses every operation may give."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in UNSAFE_METHODS and isinstance(self.view, IdempotentMixin):
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    {
                        "type": "string",
                        "pattern": IDEMPOTENCY_KEY_PATTERN,
                        "minLength": 1,
                        "maxLength": 100,
                    },
                    OpenApiParameter.HEADER,
                    required=False,
                    description=(
                        "Makes the request act once: a repeat with the same key "
                        "and body returns the first answer; another body is "
                        "refused with 409. 1 to 100 visible ASCII characters, "
                        "e.g. a UUID; anything else is refused with 400."
                    ),
                )
            )
        return parameters

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and "pattern" in schema:
            schema["pattern"] = decimal_pattern(field)
        return schema

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        statuses = ERROR_STATUSES["UNSAFE" if self.method in UNSAFE_METHODS else "GET"]
        if self.method == "GET" and self._is_list_view():
            statuses = (*statuses, "400")
        for status_code in statuses:
            bodies.setdefault(
                status_code,
                self._get_response_for_code(
                    ErrorSerializer, status_code, None, direction
                ),
            )
        return bodies
