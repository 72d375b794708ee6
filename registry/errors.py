"""Refusals the services of every app raise, shaped for forms and the API alike."""

from django.core.exceptions import ValidationError


def field_error(field: str, message: str, code: str) -> ValidationError:
    """A refusal tied to a form field that keeps its code: a plain dict of
    messages would drop it, and the API reports it."""
    return ValidationError({field: ValidationError(message, code=code)})
