"""Idempotent mutations: an ``Idempotency-Key`` header makes a mutating
request act once."""

import hashlib
import json
import re
from functools import partial

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from api.errors import Conflict
from api.models import IdempotencyRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Visible ASCII (! to ~), as HTTP headers carry it; the length the records
# hold. One pattern for the check and for the schema.
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,100}$"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


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
        if not IDEMPOTENCY_KEY.fullmatch(key):
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
