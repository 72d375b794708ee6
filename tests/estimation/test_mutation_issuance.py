"""Buffer-share rules of issuance that the mutation run (make mutation) found
untested: an empty field means the methodology's share, and a refused share
says why."""

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
