"""API-wide wiring for /api/v1/: the error format, pagination and throttles.

Every error is JSON of one shape, whatever raised it (DRF, a service's
``ValidationError`` or ``PermissionDenied``, a missing object)::

    {"code": "insufficient_credits", "message": "Only 900 t are available ...",
     "fields": {"quantity": [{"code": "insufficient_credits", "message": "..."}]}}

``code`` is stable (clients branch on it); ``message`` is translated by the
request's Accept-Language; ``fields`` appears when the input was at fault.
No input gives a 5xx: JSON nested deeper than ``MAX_JSON_DEPTH`` is a 400
(``nesting_too_deep``), a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (files
apart) a 413 (``request_too_large``). Throttles count per client address as
the trusted proxies report it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle
from rest_framework.views import set_rollback

from common.client_address import client_address

MAX_PAGE_SIZE = 200


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class ClientAddressThrottleMixin:
    """Counts per the client address the trusted proxies report, never per
    what the client wrote into X-Forwarded-For (common/client_address.py)."""

    def get_ident(self, request):
        return client_address(request) or "unknown"


class AnonThrottle(ClientAddressThrottleMixin, AnonRateThrottle):
    """Anonymous requests per client address."""


class AuthThrottle(ClientAddressThrottleMixin, ScopedRateThrottle):
    """Sign-in attempts per client address (anonymous by definition)."""

    scope_attr = "throttle_scope"


# Service refusals that mean "not in this state, or not again", not "bad input":
# answered 409 Conflict rather than 400.
CONFLICT_CODES = frozenset(
    {
        "state",
        "overlap",
        "run_state",
        "project_state",
        "already_submitted",
        "period_overlap",
        "not_submitted",
        "not_approved_submitted",
        "not_approved_rejected",
        "not_approved_issued",
        "run_issued",
        "fingerprint",
        "not_pending",
        "expired",
        "idempotency_conflict",
    }
)


# Service refusals that mean "you may not do this", whatever the input: 403.
FORBIDDEN_CODES = frozenset({"own_request"})


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _lazy("The request is too large.")


def _request_too_large() -> RequestTooLarge:
    megabytes = Decimal(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) / (1024 * 1024)
    return RequestTooLarge(
        _(
            "The request is too large. Send files (such as a boundary or "
            "land-cover file) as multipart uploads; other input is limited to "
            "%(size)s MB."
        )
        % {"size": f"{megabytes:.1f}".removesuffix(".0")}
    )


# Deeper JSON than any request needs (a GeoJSON boundary is under 10 levels);
# refusing it early keeps the parser and everything after it out of recursion
# limits.
MAX_JSON_DEPTH = 64


def _nested_too_deep(data, limit: int) -> bool:
    """Whether ``data`` nests lists and objects more than ``limit`` deep,
    found without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep() -> exceptions.ParseError:
    return exceptions.ParseError(
        exceptions.ErrorDetail(
            _("The JSON is nested more than %(depth)s levels deep.")
            % {"depth": MAX_JSON_DEPTH},
            code="nesting_too_deep",
        )
    )


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing absurdly deep nesting with a 400 instead of
    failing with a RecursionError (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        if _nested_too_deep(data, MAX_JSON_DEPTH):
            raise _too_deep()
        return data


def _field_errors(detail) -> dict:
    """{field: [{"code", "message"}]} from DRF's nested error detail."""
    fields = {}
    for name, errors in detail.items():
        if isinstance(errors, dict):
            for inner, value in _field_errors(errors).items():
                fields[f"{name}.{inner}"] = value
            continue
        if not isinstance(errors, list):
            errors = [errors]
        flat = []
        for error in errors:
            if isinstance(error, dict):
                for inner, value in _field_errors(error).items():
                    fields[f"{name}.{inner}"] = value
            else:
                flat.append(
                    {
                        "code": getattr(error, "code", "invalid"),
                        "message": force_str(error),
                    }
                )
        if flat:
            fields[name] = flat
    return fields


def _from_django_validation(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        detail = {
            ("non_field_errors" if field == "__all__" else field): [
                exceptions.ErrorDetail(force_str(message), code=item.code or "invalid")
                for item in items
                for message in item.messages
            ]
            for field, items in error.error_dict.items()
        }
    else:
        detail = [
            exceptions.ErrorDetail(force_str(message), code=item.code or "invalid")
            for item in error.error_list
            for message in item.messages
        ]
    return exceptions.ValidationError(detail)


def _body(exc: exceptions.APIException) -> dict:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = _field_errors(detail)
        general = fields.pop("non_field_errors", None) or fields.pop("detail", None)
        if general and not fields:
            return {"code": general[0]["code"], "message": general[0]["message"]}
        first = next(iter(fields.values()), [{"code": "invalid"}])[0]
        body = {
            "code": first["code"] if len(fields) == 1 else "invalid",
            "message": (
                general[0]["message"]
                if general
                else _("Some of the input is not valid; see the fields.")
            ),
            "fields": fields,
        }
        if general:
            body["fields"]["non_field_errors"] = general
        return body
    if isinstance(detail, list):
        messages = [force_str(item) for item in detail]
        code = getattr(detail[0], "code", None) if detail else None
        return {
            "code": code or exc.default_code,
            "message": " ".join(messages) or force_str(exc.default_detail),
        }
    return {
        "code": getattr(detail, "code", None) or exc.default_code,
        "message": force_str(detail),
    }


def exception_handler(exc, context):
    """DRF's handler, with the services' Django exceptions mapped and every
    error in the one JSON shape."""
    if isinstance(exc, DjangoValidationError):
        converted = _from_django_validation(exc)
        groups = (
            exc.error_dict.values() if hasattr(exc, "error_dict") else [exc.error_list]
        )
        codes = {item.code for items in groups for item in items}
        if codes & FORBIDDEN_CODES:
            exc = exceptions.PermissionDenied(converted.detail)
        elif codes & CONFLICT_CODES:
            exc = Conflict(converted.detail)
        else:
            exc = converted
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(
            force_str(exc) or exceptions.PermissionDenied.default_detail
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = _request_too_large()
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files, a malformed multipart body: the input's
        # fault, answered like any bad input.
        exc = exceptions.ParseError(
            exceptions.ErrorDetail(
                _("The request could not be read."), code="bad_request"
            )
        )
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response(_body(exc), status=exc.status_code, headers=headers)
