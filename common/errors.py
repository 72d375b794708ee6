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
from django.utils.translation import gettext_lazy

from common.quantities import QuantityError


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


# Quantities -----------------------------------------------------------------
# common/quantities.py is pure and refuses with a code; the translated message
# lives here, once, so a form, the API and a service give the same answer.

_QUANTITY_MESSAGES = {
    ("tonnes", "not_a_number"): gettext_lazy("Enter a whole number of tonnes."),
    ("tonnes", "fractional"): gettext_lazy(
        "Credits are whole tonnes: enter a whole number."
    ),
    ("tonnes", "not_positive"): gettext_lazy("The quantity must be at least 1 tonne."),
    ("tonnes", "too_large"): gettext_lazy("The quantity is too large."),
    ("price", "not_a_number"): gettext_lazy("Enter the price as a number, e.g. 95.70."),
    ("price", "negative"): gettext_lazy("The price cannot be negative."),
    ("price", "price_places"): gettext_lazy(
        "Give the price to at most %(places)s decimal places, e.g. 95.70."
    ),
    ("price", "too_large"): gettext_lazy("The price is too large."),
    ("amount", "not_a_number"): gettext_lazy(
        "Enter the amount as a number, e.g. 4750.00."
    ),
    ("amount", "not_positive"): gettext_lazy("The amount must be more than 0."),
    ("amount", "price_places"): gettext_lazy(
        "Give the amount to at most %(places)s decimal places, e.g. 4750.00."
    ),
    ("amount", "too_large"): gettext_lazy("The amount is too large."),
}


def quantity_message(error: QuantityError) -> str:
    """The translated message for a quantity's refusal."""
    message = _QUANTITY_MESSAGES[(error.kind, error.code)]
    if error.places is not None:
        return str(message) % {"places": error.places}
    return str(message)


def quantity_refusal(error: QuantityError, *, field: str) -> DomainError:
    """A quantity's refusal as a DomainError on ``field``, keeping its code."""
    return field_error(field, quantity_message(error), error.code)


def checked(parse, value, *, field: str, **options):
    """``parse(value, **options)`` (a common.quantities parser), or the
    DomainError on ``field`` that its refusal stands for."""
    try:
        return parse(value, **options)
    except QuantityError as error:
        raise quantity_refusal(error, field=field) from None
