"""What every API view shares: idempotent mutations, JSON 404s for malformed
ids, and the OpenAPI description of both and of the error format."""

import hashlib
import json
import re
from functools import partial

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from config.api import Conflict
from registry.api.models import IdempotencyRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Visible ASCII, as HTTP headers carry it; the length the records hold.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
INTEGER_ID = re.compile(r"^[0-9]{1,18}$")


def _canonical(value):
    """A request value as JSON-able data; an uploaded file as its name and hash."""
    if hasattr(value, "chunks"):
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "sha256": digest.hexdigest()}
    return value


def request_fingerprint(request) -> str:
    """SHA-256 of the method, path and body, independent of key order and of
    how a multipart body happened to be split."""
    data = request.data
    if hasattr(data, "lists"):  # form or multipart
        body = {name: [_canonical(v) for v in values] for name, values in data.lists()}
    else:
        body = data
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": body},
        cls=JSONEncoder,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentMixin:
    """An ``Idempotency-Key`` header on a mutating request makes it act once:
    the first successful answer is stored (per user and key, in the same
    transaction as the action) and returned again for a repeat with the same
    body; a different body with the same key is refused with 409. Failed
    requests are not stored, so a corrected repeat may reuse the key."""

    idempotency_key: str | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        method = request.method.lower()
        handler = getattr(self, method, None)
        if (
            key is None
            or request.method not in UNSAFE_METHODS
            or handler is None
            or not request.user.is_authenticated
        ):
            return
        if not IDEMPOTENCY_KEY.match(key):
            raise exceptions.ValidationError(
                {
                    IDEMPOTENCY_HEADER: [
                        exceptions.ErrorDetail(
                            _(
                                "An Idempotency-Key is 1 to 100 visible ASCII "
                                "characters, e.g. a UUID."
                            ),
                            code="idempotency_key",
                        )
                    ]
                }
            )
        self.idempotency_key = key
        # DRF looks the handler up after initial(): the wrapped one runs.
        setattr(self, method, partial(self._run_once, handler, key))

    def _run_once(self, handler, key, request, *args, **kwargs):
        fingerprint = request_fingerprint(request)
        records = IdempotencyRecord.objects.filter(user=request.user, key=key)
        try:
            with transaction.atomic():
                record = records.select_for_update().first()
                if record is not None:
                    return self._replay(record, fingerprint)
                response = handler(request, *args, **kwargs)
                if 200 <= response.status_code < 300:
                    IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        request_hash=fingerprint,
                        status_code=response.status_code,
                        response_body=json.loads(
                            json.dumps(response.data, cls=JSONEncoder)
                        ),
                        location=response.headers.get("Location", "")[:500],
                    )
                return response
        except IntegrityError:
            # A twin request with the same key won the race; this one's action
            # was rolled back with its transaction.
            record = records.first()
            if record is None:
                raise
            return self._replay(record, fingerprint)

    @staticmethod
    def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
        if record.request_hash != fingerprint:
            raise Conflict(
                exceptions.ErrorDetail(
                    _(
                        "This Idempotency-Key was already used for a different "
                        "request; use a new key for a new request."
                    ),
                    code="idempotency_conflict",
                )
            )
        headers = {"Idempotent-Replayed": "true"}
        if record.location:
            headers["Location"] = record.location
        return Response(
            record.response_body, status=record.status_code, headers=headers
        )


class ApiViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Base of the API's view sets. Objects come from the app's selectors (so
    users see exactly what the web pages show them); a malformed id is a JSON
    404 like a missing one."""

    integer_lookup = True
    lookup_value_regex = "[^/]+"

    def lookup_value(self) -> str:
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        if self.integer_lookup and not INTEGER_ID.match(value):
            raise exceptions.NotFound()
        return value


# OpenAPI -------------------------------------------------------------------------


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


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the Idempotency-Key header and the error
    responses every operation may give."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in UNSAFE_METHODS:
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    required=False,
                    description=(
                        "Makes the request act once: a repeat with the same key "
                        "and body returns the first answer; another body is "
                        "refused with 409."
                    ),
                )
            )
        return parameters

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
