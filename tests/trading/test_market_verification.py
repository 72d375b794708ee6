"""verify_ledger holds the market to its invariants (design section 5,
invariants 8 and 9): an open order's request holds exactly the tonnes
ordered, and the journal's market entries replay. Each tampering is what an
attacker with the database owner's rights could do (tests/trading/tampering.py,
on both databases), keeping whatever the other checks look at intact, so the
one check named is the one that sees it."""

import pytest
from django.utils import timezone

from tests.trading.conftest import confirm_payment as _confirm
from tests.trading.conftest import order_from as _order
from tests.trading.tampering import guards_lifted, rehash_from
from trading import market
from trading.models import CreditBlock, LedgerEntry, TradeRequest
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


def _clean() -> None:
    report = verify_ledger(record=False)
    assert report.violations == []


# Reserved = ordered --------------------------------------------------------------


@pytest.mark.parametrize("paid", [False, True], ids=["awaiting_payment", "pending"])
def test_an_open_order_whose_request_says_another_quantity_is_reported(
    listing, seller, buyer, buyer_account, paid
):
    order = _order(buyer, buyer_account, listing)
    if paid:
        _confirm(seller, order)
    _clean()
    # The request now claims 60 t; its blocks hold the 50 t ordered.
    TradeRequest.objects.filter(pk=order.trade_request_id).update(quantity=60)
    assert verify_ledger(record=False).violations == [
        {
            "check": "order",
            "order": order.pk,
            "request": order.trade_request_id,
            "ordered": 60,
            "reserved": 50,
        }
    ]


def test_reserved_serials_moved_from_one_open_order_to_another_are_reported(
    listing, seller_account, buyer, buyer_account
):
    """Both orders are open and the serials stay reserved in the seller's
    account (the replay, the totals and the listing agree): only the orders'
    own quantities show that 10 t changed hands."""
    first = _order(buyer, buyer_account, listing)
    second = _order(buyer, buyer_account, listing)
    _clean()
    (block,) = CreditBlock.objects.filter(trade_request=first.trade_request)
    with guards_lifted():
        CreditBlock.objects.filter(pk=block.pk).update(
            last_serial=block.last_serial - 10, quantity=block.quantity - 10
        )
        CreditBlock.objects.create(
            batch_id=block.batch_id,
            account=seller_account,
            first_serial=block.last_serial - 9,
            last_serial=block.last_serial,
            quantity=10,
            state=CreditBlock.State.RESERVED,
            trade_request=second.trade_request,
        )
    assert verify_ledger(record=False).violations == [
        {
            "check": "order",
            "order": order.pk,
            "request": order.trade_request_id,
            "ordered": 50,
            "reserved": reserved,
        }
        for order, reserved in ((first, 40), (second, 60))
    ]


# The journal's market entries replay ---------------------------------------------

# Each scenario's last entry of its kind, and where it moves serials from and
# to: replayed a second time, it moves them from where they no longer are.
MOVES = {
    "list": ("active", "listed"),
    "delist": ("listed", "active"),
    "order": ("listed", "reserved"),
    "return": ("reserved", "listed"),
}


@pytest.mark.parametrize("kind", list(MOVES))
def test_a_market_entry_moving_serials_from_where_they_are_not_is_reported(
    listing, seller, seller_account, buyer, buyer_account, kind
):
    if kind == "delist":
        market.lower_listing(actor=seller, listing=listing, quantity_left=150)
    if kind in ("order", "return"):
        order = _order(buyer, buyer_account, listing)
    if kind == "return":
        market.decline_order(actor=seller, order=order, reason="未收到货款")
    _clean()
    entry = LedgerEntry.objects.filter(kind=kind).latest("sequence")
    last = LedgerEntry.objects.order_by("-sequence").first().sequence
    with guards_lifted():
        # The same movement again, linked into the chain properly: the
        # holdings it leaves are the ones the blocks show.
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    sequence=last + 1,
                    kind=entry.kind,
                    batch_id=entry.batch_id,
                    first_serial=entry.first_serial,
                    last_serial=entry.last_serial,
                    quantity=entry.quantity,
                    from_account_id=entry.from_account_id,
                    to_account_id=entry.to_account_id,
                    trade_request_id=entry.trade_request_id,
                    listing_id=entry.listing_id,
                    actor_id=entry.actor_id,
                    created_at=timezone.now(),
                    content_hash="x",
                    previous_hash="x",
                    entry_hash="again",
                )
            ]
        )
        rehash_from(last + 1)
    leaves, arrives = MOVES[kind]
    assert verify_ledger(record=False).violations == [
        {
            "check": "journal",
            "sequence": last + 1,
            "kind": kind,
            "batch": listing.batch_id,
            "first_serial": entry.first_serial,
            "last_serial": entry.last_serial,
            "tonnes": entry.quantity,
            "moves_from": {"account": seller_account.number, "state": leaves},
            "journal_had_them_at": {"account": seller_account.number, "state": arrives},
        }
    ]
