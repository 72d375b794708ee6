"""A cancellation takes credits from a holding account or the buffer pool only:
from the retirement or cancellation account (final states) it is refused with
a translated reason, on the page and in the service, and nothing changes. The
API's answer is in tests/api/test_hardening.py."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from registry.models import Account
from trading import services
from trading.models import LedgerEntry, TradeRequest

pytestmark = pytest.mark.django_db

REFUSAL = "Credits can only be cancelled from a holding account or the buffer pool."
FINAL_ACCOUNTS = [Account.Kind.CANCELLATION, Account.Kind.RETIREMENT]


@pytest.mark.parametrize("kind", FINAL_ACCOUNTS)
def test_the_service_refuses_a_final_account_as_the_source(admin, operator, kind):
    with pytest.raises(ValidationError) as raised:
        services.request_cancellation(
            actor=admin,
            from_account=operator.accounts.get(kind=kind),
            quantity=1,
            note="Reversal after a fire.",
            idempotency_key="cancel-final",
        )
    (error,) = raised.value.error_dict["from_account"]
    assert error.code == "account_kind"
    assert error.message == REFUSAL
    assert not TradeRequest.objects.exists()
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("kind", FINAL_ACCOUNTS)
def test_the_page_refuses_a_final_account_as_the_source(
    client, issue, admin, operator, kind
):
    issue()
    client.force_login(admin)
    response = client.post(
        reverse("trading:cancellation-create"),
        {
            "from_account": operator.accounts.get(kind=kind).pk,
            "quantity": "1",
            "note": "Reversal after a fire.",
            "idempotency_key": "cancel-page",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert REFUSAL in response.content.decode()
    assert not TradeRequest.objects.exists()
