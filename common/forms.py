"""Form helpers every app's pages use. Django forms only: no models."""

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form, error: ValidationError, *, default_field=None) -> None:
    """Show a service's refusal on the form: field errors on their fields (or the
    form), a plain message on ``default_field`` (None: the whole form)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(default_field, error)


class IsoDateInput(forms.DateInput):
    """A browser date picker. Its value is always ISO 8601: a localized format
    (the Chinese pages') would leave the picker empty."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")
