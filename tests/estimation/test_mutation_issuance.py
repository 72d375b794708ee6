"""Buffer-share rules of issuance that the mutation run (make mutation) found
untested: an empty field means the methodology's share, and a refused share
says why."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from estimation.services.issuance import issue_verification
from estimation.services.verification import (
    approve_verification,
    submit_for_verification,
)
from trading.models import CreditBatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(staff, verified_run, verifier):
    verification = submit_for_verification(actor=staff, run=verified_run)
    return approve_verification(
        actor=verifier, verification=verification, reasons="Checked the map."
    )


def test_an_empty_buffer_share_is_the_methodologys(approved, registry_admin):
    # A form's untouched field arrives as "": no reason is needed.
    verification = issue_verification(
        actor=registry_admin, verification=approved, buffer_share=""
    )
    default = approved.run.methodology.buffer_share
    assert verification.buffer_share == default
    assert verification.batch.buffer_quantity == int(
        verification.batch.quantity * default
    )


def test_a_share_outside_the_range_says_so(approved, registry_admin):
    with pytest.raises(ValidationError) as raised:
        issue_verification(
            actor=registry_admin,
            verification=approved,
            buffer_share="1.5",
            buffer_share_reason="Trying.",
        )
    (error,) = raised.value.error_dict["buffer_share"]
    assert error.message == (
        "The buffer share must be at least 0 and less than 100 percent."
    )
    assert not CreditBatch.objects.exists()


def test_a_share_finer_than_a_hundredth_of_a_percent_is_refused(
    approved, registry_admin
):
    # _buffer_share 33, 41-43: 12.345 % cannot be stored (0.01 % steps).
    with pytest.raises(ValidationError) as raised:
        issue_verification(
            actor=registry_admin,
            verification=approved,
            buffer_share="0.12345",
            buffer_share_reason="Fire risk.",
        )
    (error,) = raised.value.error_dict["buffer_share"]
    assert error.code == "buffer_share"
    assert error.message == (
        "Give the buffer share to at most two decimals of a percent."
    )
    assert not CreditBatch.objects.exists()


@pytest.mark.parametrize(
    ("default", "shown"), [(Decimal("0.1"), "10"), (Decimal("0.125"), "12.5")]
)
def test_another_share_without_a_reason_names_the_methodologys(
    approved, registry_admin, default, shown
):
    # _buffer_share 50, 51, 59-62, 66-68; a reason of blanks is no reason.
    methodology = approved.run.methodology
    methodology.buffer_share = default
    methodology.save(update_fields=["buffer_share"])
    with pytest.raises(ValidationError) as raised:
        issue_verification(
            actor=registry_admin,
            verification=approved,
            buffer_share="0.2",
            buffer_share_reason="   ",
        )
    (error,) = raised.value.error_dict["buffer_share_reason"]
    assert error.code == "buffer_share_reason"
    assert error.message == (
        f"Give the reason for a buffer share other than the methodology's {shown} %."
    )
    assert not CreditBatch.objects.exists()


def test_the_reason_for_another_share_is_kept_without_its_blanks(
    approved, registry_admin
):
    verification = issue_verification(
        actor=registry_admin,
        verification=approved,
        buffer_share="0.2",
        buffer_share_reason="  Fire risk.  ",
    )
    assert verification.buffer_share == Decimal("0.2")
    assert verification.buffer_share_reason == "Fire risk."
    assert verification.batch.buffer_quantity == int(
        verification.batch.quantity * Decimal("0.2")
    )
