"""Ledger rules the mutation run (make mutation) found untested: whose
idempotency key a repeated request meets, and the refusal's exact words."""

import pytest
from django.core.exceptions import ValidationError

from trading import services
from trading.models import TradeRequest

from .test_services import _transfer

pytestmark = pytest.mark.django_db


def test_a_repeated_key_finds_the_callers_own_request_not_anothers(
    issue, seller, seller_account, buyer, buyer_account, admin
):
    issue(quantity=1000, buffer=0)
    delivery = _transfer(seller, seller_account, buyer_account, quantity=100)
    services.approve_request(actor=admin, request=delivery)
    # Seller and buyer each use the key "order-1" for their own request.
    sellers = _transfer(
        seller, seller_account, buyer_account, quantity=10, key="order-1"
    )
    buyers = _transfer(buyer, buyer_account, seller_account, quantity=5, key="order-1")
    assert buyers.pk != sellers.pk
    # The buyer repeating its call gets its own request back, not the seller's.
    again = _transfer(buyer, buyer_account, seller_account, quantity=5, key="order-1")
    assert again.pk == buyers.pk
    assert TradeRequest.objects.filter(idempotency_key="order-1").count() == 2


def test_a_repeated_key_finds_the_request_of_that_key(
    issue, seller, seller_account, buyer_account
):
    issue(quantity=1000, buffer=0)
    first = _transfer(seller, seller_account, buyer_account, quantity=10, key="a")
    second = _transfer(seller, seller_account, buyer_account, quantity=20, key="b")
    assert (
        _transfer(seller, seller_account, buyer_account, quantity=20, key="b").pk
        == second.pk
    )
    assert (
        _transfer(seller, seller_account, buyer_account, quantity=10, key="a").pk
        == first.pk
    )


def test_a_key_reused_for_another_body_is_refused_in_words(
    issue, seller, seller_account, buyer_account
):
    issue()
    _transfer(seller, seller_account, buyer_account, quantity=10, key="order-7")
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buyer_account, quantity=11, key="order-7")
    assert raised.value.code == "idempotency_conflict"
    assert raised.value.messages == [
        "This idempotency key was already used for a different request; "
        "use a new key for a new request."
    ]
