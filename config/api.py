"""API-wide wiring for /api/v1/: the error format, pagination and throttles.

Every error is JSON of one shape, whatever raised it (DRF, a service's
``ValidationError`` or ``PermissionDenied``, a missing object)::

    {"code": "insufficient_credits", "message": "Only 900 t are available ...",
     "fields": {"quantity": [{"code": "insufficient_credits", "message": "..."}]}}

``code`` is stable (clients branch on it); ``message`` is translated by the
request's Accept-Language; ``fields`` appears when the input was at fault.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import set_rollback

MAX_PAGE_SIZE = 200


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class AuthThrottle(ScopedRateThrottle):
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


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


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
        exc = Conflict(converted.detail) if codes & CONFLICT_CODES else converted
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(
            force_str(exc) or exceptions.PermissionDenied.default_detail
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response(_body(exc), status=exc.status_code, headers=headers)
