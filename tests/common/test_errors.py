"""The typed refusals (common/errors.py): each carries its code and message,
and forms and views that handle Django's exceptions handle them unchanged."""

import pytest
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError

from common.errors import DomainError, NotPermitted, StateConflict, field_error

REFUSALS = [DomainError, StateConflict, NotPermitted]


class NoteForm(forms.Form):
    note = forms.CharField(required=False)


@pytest.mark.parametrize("refusal", REFUSALS)
def test_every_refusal_is_a_validation_error_with_its_code_and_message(refusal):
    error = refusal("Not now.", code="not_now")
    assert isinstance(error, ValidationError)
    assert error.code == "not_now"
    assert error.messages == ["Not now."]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refusal_tied_to_a_field_keeps_its_code_there(refusal):
    error = refusal("Too long.", code="too_long", field="note")
    assert error.code == "too_long"
    assert error.message_dict == {"note": ["Too long."]}
    assert [item.code for item in error.error_dict["note"]] == ["too_long"]


def test_only_not_permitted_is_a_permission_denied():
    assert isinstance(NotPermitted("No.", code="own_request"), PermissionDenied)
    assert not isinstance(DomainError("No.", code="bad"), PermissionDenied)
    assert not isinstance(StateConflict("No.", code="state"), PermissionDenied)


def test_the_three_kinds_are_distinct():
    """The API's status is chosen by class: no kind may pass for another."""
    assert not isinstance(StateConflict("x", code="x"), DomainError)
    assert not isinstance(DomainError("x", code="x"), StateConflict)
    assert not isinstance(NotPermitted("x", code="x"), (DomainError, StateConflict))


@pytest.mark.parametrize("refusal", REFUSALS)
def test_forms_show_a_refusal_as_they_show_any_validation_error(refusal):
    general, tied = NoteForm({"note": "x"}), NoteForm({"note": "x"})
    assert general.is_valid() and tied.is_valid()
    general.add_error(None, refusal("Not in this state.", code="state"))
    tied.add_error(None, refusal("Too long.", code="too_long", field="note"))
    assert general.non_field_errors() == ["Not in this state."]
    assert general.has_error("__all__", code="state")
    assert tied.errors["note"] == ["Too long."]
    assert tied.has_error("note", code="too_long")


def test_field_error_is_bad_input_tied_to_its_field():
    error = field_error("quantity", "Enter a whole number.", "not_a_number")
    assert type(error) is DomainError
    assert error.message_dict == {"quantity": ["Enter a whole number."]}
    assert error.error_dict["quantity"][0].code == "not_a_number"
