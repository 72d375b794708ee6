"""Typed refusals the services of every app raise. Each carries a stable
``code`` (clients and tests branch on it) and a translated message, and its
class says what kind of refusal it is, so the API answers with the right
status without keeping lists of codes (api/errors.py):

- ``DomainError``: this input is not acceptable for this operation (400);
- ``StateConflict``: not in this state, or not again (409);
- ``NotPermitted``: this actor may not do this, whatever the input (403).

All three are Django ``ValidationError``s, so the forms and views that show a
refusal's messages (``except ValidationError``, ``form.add_error``) show these
unchanged. ``NotPermitted`` is also a ``PermissionDenied``: left uncaught it
is a 403 page, as Django answers any ``PermissionDenied``."""

from django.core.exceptions import PermissionDenied, ValidationError


class Refusal(ValidationError):
    """A service's refusal with its ``code``; ``field`` ties it to the form
    field at fault (the API reports it under ``fields``)."""

    def __init__(self, message, *, code: str, field: str | None = None, params=None):
        if field is None:
            super().__init__(message, code=code, params=params)
        else:
            # A plain {field: message} would drop the code; a nested error keeps it.
            super().__init__(
                {field: ValidationError(message, code=code, params=params)}
            )
        self.code = code


class DomainError(Refusal):
    """Bad input for this operation."""


class StateConflict(Refusal):
    """The object is not in a state that allows this, or it was done already."""


class NotPermitted(Refusal, PermissionDenied):
    """The actor may not do this, whatever the input."""


def field_error(field: str, message: str, code: str) -> DomainError:
    """Bad input tied to a form field, keeping its code."""
    return DomainError(message, code=code, field=field)
