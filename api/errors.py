"""The API's error format and the exception handler that gives it.

Every error is JSON of one shape, whatever raised it (DRF, a service's
refusal, a missing object)::

    {"code": "insufficient_credits", "message": "Only 900 t are available ...",
     "fields": {"quantity": [{"code": "insufficient_credits", "message": "..."}]}}

``code`` is stable (clients branch on it); ``message`` is translated by the
request's Accept-Language; ``fields`` appears when the input was at fault.
The status comes from the refusal's class (common/errors.py): 409 for a
``StateConflict``, 403 for a ``NotPermitted`` or any ``PermissionDenied``,
400 for a ``DomainError`` or any other ``ValidationError``. No input gives a
5xx: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (files apart) is a 413
(``request_too_large``), an unreadable one a 400 (``bad_request``).

Faults of the server are JSON too, never an HTML page: a database that does
not answer (restarting, unreachable) is a 503 ``database_unavailable`` with
``Retry-After``, after which the client repeats the request with the same
``Idempotency-Key`` (it acts once, whether or not the first try committed); a
full file storage is a 507 ``storage_full`` (common/storage.py).
"""

import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from common.errors import NotPermitted, StateConflict
from common.storage import StorageFull

logger = logging.getLogger(__name__)

# Seconds a client waits before repeating a request the database could not
# answer: a PostgreSQL restart or fail-over takes a few.
DATABASE_RETRY_AFTER_SECONDS = 5


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = gettext_lazy(
        "The registry's database is not answering for a moment. Try again in a "
        "few seconds; repeat a change with the same Idempotency-Key so that it "
        "is made only once."
    )
    retry_after = DATABASE_RETRY_AFTER_SECONDS


class InsufficientStorage(exceptions.APIException):
    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_code = "storage_full"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = gettext_lazy("The request is too large.")


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


def _drf_detail(error: DjangoValidationError):
    """DRF's error detail from a Django ValidationError, codes kept."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [
                exceptions.ErrorDetail(force_str(message), code=item.code or "invalid")
                for item in items
                for message in item.messages
            ]
            for field, items in error.error_dict.items()
        }
    return [
        exceptions.ErrorDetail(force_str(message), code=item.code or "invalid")
        for item in error.error_list
        for message in item.messages
    ]


def _from_refusal(error: DjangoValidationError) -> exceptions.APIException:
    """The API exception for a service's refusal: its class decides the status."""
    detail = _drf_detail(error)
    if isinstance(error, NotPermitted):
        return exceptions.PermissionDenied(detail)
    if isinstance(error, StateConflict):
        return Conflict(detail)
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
    """DRF's handler, with the services' refusals and Django's exceptions
    mapped, and every error in the one JSON shape."""
    # Before PermissionDenied: a NotPermitted is both, and keeps its code.
    if isinstance(exc, StorageFull):
        exc = InsufficientStorage(_drf_detail(exc))
    elif isinstance(exc, DjangoValidationError):
        exc = _from_refusal(exc)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(
            force_str(exc) or exceptions.PermissionDenied.default_detail
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = _request_too_large()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # The connection failed (not a constraint: IntegrityError is neither),
        # so the request's transaction did not happen or, if the failure hit
        # its commit, a repeat with the same Idempotency-Key finds its answer.
        request = context.get("request")
        logger.error(
            "Database unavailable during %s %s: %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc,
        )
        exc = DatabaseUnavailable()
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
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(exc.retry_after)
    set_rollback()
    return Response(_body(exc), status=exc.status_code, headers=headers)
