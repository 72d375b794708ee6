import pytest

from tests.trading.conftest import (  # noqa: F401 (fixtures)
    buyer,
    buyer_account,
    buyer_org,
    issue,
    new_key,
    project,
    seller,
    seller_account,
    seller_org,
)
from trading import services
from trading.models import Certificate

CHINESE_BENEFICIARY = "毕节市绿色能源有限公司"


@pytest.fixture
def retire(issue, seller, seller_account, admin):  # noqa: F811 (fixtures)
    """Retire ``quantity`` t from the seller's account (a fresh batch unless one
    is given) and settle it; returns the certificate."""

    def make(quantity=100, beneficiary=CHINESE_BENEFICIARY, public=True, batch=None):
        batch = batch or issue()
        request = services.request_retirement(
            actor=seller,
            from_account=seller_account,
            quantity=quantity,
            beneficiary=beneficiary,
            beneficiary_public=public,
            purpose="voluntary",
            reporting_year=2025,
            idempotency_key=new_key(),
            batch=batch,
        )
        services.approve_request(actor=admin, request=request)
        return Certificate.objects.get(trade_request=request)

    return make
