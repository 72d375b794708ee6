"""The market's writes (trading.market): listings hold their serials, orders
take them, the seller's payment record gates the review, and every way an
order fails returns its serials to the listing. Runs on SQLite and, in CI's
second stage, on PostgreSQL (where the ledger functions do the moving)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from common.errors import NotPermitted, StateConflict
from registry.roles import Role
from tests.trading.conftest import confirm_payment as _confirm
from tests.trading.conftest import new_key
from tests.trading.conftest import order_from as _order
from trading import market, services
from trading.models import (
    Certificate,
    CreditBlock,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)
from trading.selectors import get_account_balance, list_pending_requests
from trading.verification import verify_ledger


def _codes(error: ValidationError) -> set[str]:
    return {e.code for errors in error.error_dict.values() for e in errors} | (
        {error.code} if getattr(error, "code", None) else set()
    )


def _listed_tonnes(listing) -> int:
    return sum(
        listing.blocks.filter(state=CreditBlock.State.LISTED).values_list(
            "quantity", flat=True
        )
    )


def _ledger_ok():
    report = verify_ledger(record=False)
    assert report.violations == []


# Listings -------------------------------------------------------------------------


def test_listing_takes_the_serials_off_the_spendable_balance_at_once(
    listing, seller_account
):
    assert get_account_balance(account=seller_account) == {
        "active": 700,
        "listed": 200,
        "reserved": 0,
        "retired": 0,
        "cancelled": 0,
    }
    assert (listing.quantity_listed, listing.quantity_left) == (200, 200)
    assert _listed_tonnes(listing) == 200
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.LIST)
    assert (entry.listing_id, entry.quantity) == (listing.pk, 200)
    # The lowest serials of the batch are listed.
    assert entry.first_serial == listing.batch.first_serial
    _ledger_ok()


def test_listed_credits_cannot_be_transferred_elsewhere(
    listing, seller, seller_account, buyer_account
):
    with pytest.raises(ValidationError) as refused:
        services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=701,
            price_per_tonne="90",
            idempotency_key=new_key(),
        )
    assert "insufficient_credits" in _codes(refused.value)


def test_listing_more_than_is_available_is_refused_and_changes_nothing(
    seller, seller_account, batch
):
    entries = LedgerEntry.objects.count()
    with pytest.raises(ValidationError) as refused:
        market.create_listing(
            actor=seller,
            account=seller_account,
            batch=batch,
            quantity=901,
            price_per_tonne="95",
            minimum_lot=1,
            idempotency_key=new_key(),
        )
    assert "insufficient_credits" in _codes(refused.value)
    assert "900" in str(refused.value)
    assert not Listing.objects.exists()
    assert LedgerEntry.objects.count() == entries
    assert get_account_balance(account=seller_account)["active"] == 900


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price_per_tonne": "0"}, "not_positive"),
        ({"price_per_tonne": "95.123"}, "price_places"),
        ({"minimum_lot": 201}, "lot_above_quantity"),
        ({"minimum_lot": "0"}, "not_positive"),
        ({"quantity": "2.5"}, "fractional"),
        ({"ends_on": "yesterday"}, "ends_in_past"),
        ({"note": "x" * 2001}, "too_long"),
    ],
)
def test_a_bad_listing_is_refused_with_its_reason(
    seller, seller_account, batch, fields, code
):
    values = {
        "quantity": 200,
        "price_per_tonne": "95",
        "minimum_lot": 10,
        "ends_on": None,
        "note": "",
    }
    values.update(fields)
    if values["ends_on"] == "yesterday":
        values["ends_on"] = timezone.localdate() - timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        market.create_listing(
            actor=seller,
            account=seller_account,
            batch=batch,
            idempotency_key=new_key(),
            **values,
        )
    assert code in _codes(refused.value)
    assert not Listing.objects.exists()


def test_only_the_holders_own_people_list_its_credits(buyer, seller_account, batch):
    with pytest.raises(PermissionDenied):
        market.create_listing(
            actor=buyer,
            account=seller_account,
            batch=batch,
            quantity=10,
            price_per_tonne="95",
            minimum_lot=1,
            idempotency_key=new_key(),
        )
    assert not Listing.objects.exists()


def test_one_key_lists_once(seller, seller_account, batch):
    fields = {
        "actor": seller,
        "account": seller_account,
        "batch": batch,
        "quantity": 100,
        "price_per_tonne": "95",
        "minimum_lot": 10,
        "idempotency_key": "list-once",
    }
    first = market.create_listing(**fields)
    again = market.create_listing(**fields)
    assert again.pk == first.pk
    assert get_account_balance(account=seller_account)["listed"] == 100
    with pytest.raises(StateConflict) as refused:
        market.create_listing(**{**fields, "price_per_tonne": "96"})
    assert refused.value.code == "idempotency_conflict"


def test_lowering_gives_the_highest_serials_back(listing, seller, seller_account):
    last_listed = listing.batch.first_serial + 199
    market.lower_listing(actor=seller, listing=listing, quantity_left=150)
    listing.refresh_from_db()
    assert listing.quantity_left == 150
    assert _listed_tonnes(listing) == 150
    delist = LedgerEntry.objects.get(kind=LedgerEntry.Kind.DELIST)
    assert (delist.first_serial, delist.last_serial) == (last_listed - 49, last_listed)
    assert delist.listing_id == listing.pk
    assert get_account_balance(account=seller_account)["active"] == 750
    _ledger_ok()


@pytest.mark.parametrize("keep", [200, 250])
def test_lowering_to_as_many_or_more_is_refused(listing, seller, keep):
    with pytest.raises(ValidationError) as refused:
        market.lower_listing(actor=seller, listing=listing, quantity_left=keep)
    assert "not_lower" in _codes(refused.value)
    listing.refresh_from_db()
    assert listing.quantity_left == 200


def test_withdrawing_gives_back_what_is_unsold_and_closes_the_listing(
    listing, seller, seller_account, buyer, buyer_account
):
    _order(buyer, buyer_account, listing, quantity=50)
    market.withdraw_listing(actor=seller, listing=listing)
    listing.refresh_from_db()
    assert (listing.status, listing.quantity_left) == ("withdrawn", 0)
    assert listing.closed_by == seller
    balance = get_account_balance(account=seller_account)
    # The order keeps its 50 t; the 150 t unsold are spendable again.
    assert (balance["active"], balance["listed"], balance["reserved"]) == (850, 0, 50)
    with pytest.raises(StateConflict) as refused:
        _order(buyer, buyer_account, listing, quantity=10)
    assert refused.value.code == "listing_closed"
    with pytest.raises(StateConflict):
        market.withdraw_listing(actor=seller, listing=listing)
    _ledger_ok()


def test_listings_past_their_end_date_expire_and_give_their_credits_back(
    listing, seller_account
):
    Listing.objects.filter(pk=listing.pk).update(
        ends_on=timezone.localdate() - timedelta(days=1)
    )
    assert market.expire_listings() == 1
    listing.refresh_from_db()
    assert (listing.status, listing.quantity_left) == ("expired", 0)
    assert listing.closed_by is None
    assert get_account_balance(account=seller_account)["active"] == 900
    assert market.expire_listings() == 0
    _ledger_ok()


def test_an_ended_listing_takes_no_orders_even_before_it_is_swept(
    listing, buyer, buyer_account
):
    listing.ends_on = timezone.localdate() - timedelta(days=1)
    Listing.objects.filter(pk=listing.pk).update(ends_on=listing.ends_on)
    with pytest.raises(StateConflict) as refused:
        _order(buyer, buyer_account, listing)
    assert refused.value.code == "listing_closed"


def test_a_stranger_cannot_lower_or_withdraw_a_listing(listing, buyer):
    with pytest.raises(PermissionDenied):
        market.lower_listing(actor=buyer, listing=listing, quantity_left=10)
    with pytest.raises(PermissionDenied):
        market.withdraw_listing(actor=buyer, listing=listing)
    listing.refresh_from_db()
    assert (listing.status, listing.quantity_left) == ("open", 200)


# Orders ---------------------------------------------------------------------------


def test_an_order_moves_its_serials_from_the_listing_to_the_order(
    listing, buyer, buyer_account, seller_account
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    listing.refresh_from_db()
    assert listing.quantity_left == 150
    assert _listed_tonnes(listing) == 150
    request = order.trade_request
    assert request.status == TradeRequest.Status.AWAITING_PAYMENT
    assert (request.from_account, request.to_account) == (seller_account, buyer_account)
    assert request.price_per_tonne == Decimal("95.00")
    assert order.amount == Decimal("4750.00")
    assert sum(b.quantity for b in request.blocks.all()) == 50
    assert {b.state for b in request.blocks.all()} == {"reserved"}
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.ORDER)
    assert (entry.trade_request_id, entry.listing_id) == (request.pk, listing.pk)
    # The order takes the listing's lowest serials.
    assert entry.first_serial == listing.batch.first_serial
    # Not in the review queue until the seller confirms the payment.
    assert request not in list_pending_requests()
    _ledger_ok()


@pytest.mark.parametrize(
    ("quantity", "code"),
    [(5, "below_minimum_lot"), (201, "not_enough_left"), ("1.5", "fractional")],
)
def test_an_order_outside_the_listings_limits_is_refused(
    listing, buyer, buyer_account, quantity, code
):
    with pytest.raises(ValidationError) as refused:
        _order(buyer, buyer_account, listing, quantity=quantity)
    assert code in _codes(refused.value)
    assert not Order.objects.exists()
    listing.refresh_from_db()
    assert listing.quantity_left == 200


def test_the_last_tonnes_may_be_bought_below_the_minimum_lot(
    listing, seller, buyer, buyer_account
):
    market.lower_listing(actor=seller, listing=listing, quantity_left=4)
    with pytest.raises(ValidationError):
        _order(buyer, buyer_account, listing, quantity=3)
    order = _order(buyer, buyer_account, listing, quantity=4)
    listing.refresh_from_db()
    assert (order.trade_request.quantity, listing.quantity_left) == (4, 0)
    with pytest.raises(StateConflict) as refused:
        _order(buyer, buyer_account, listing, quantity=1)
    assert refused.value.code == "sold_out"


def test_a_seller_cannot_buy_its_own_listing(listing, seller, seller_account):
    with pytest.raises(NotPermitted) as refused:
        _order(seller, seller_account, listing)
    assert refused.value.code == "own_listing"


def test_a_buyer_buys_only_into_its_own_account(
    listing, buyer, make_user, buyer_account
):
    stranger = make_user(role=Role.BUYER)
    with pytest.raises(PermissionDenied):
        _order(stranger, buyer_account, listing)
    assert not Order.objects.exists()


def test_one_key_orders_once(listing, buyer, buyer_account):
    first = _order(buyer, buyer_account, listing, key="order-once")
    again = _order(buyer, buyer_account, listing, key="order-once")
    assert again.pk == first.pk
    listing.refresh_from_db()
    assert listing.quantity_left == 150
    with pytest.raises(StateConflict) as refused:
        _order(buyer, buyer_account, listing, quantity=60, key="order-once")
    assert refused.value.code == "idempotency_conflict"


def test_retire_on_delivery_needs_a_beneficiary_and_a_purpose(
    listing, buyer, buyer_account
):
    with pytest.raises(ValidationError) as refused:
        _order(buyer, buyer_account, listing, retire_on_delivery=True)
    assert "required" in _codes(refused.value)
    with pytest.raises(ValidationError) as refused:
        _order(
            buyer,
            buyer_account,
            listing,
            retire_on_delivery=True,
            beneficiary="贵州省毕节市2026年生态文化旅游节",
            purpose="nonsense",
        )
    assert "invalid_choice" in _codes(refused.value)
    assert not Order.objects.exists()


# Payment and review ----------------------------------------------------------------


def test_an_order_is_reviewed_only_after_the_seller_confirms_the_payment(
    listing, seller, buyer, buyer_account, seller_account, admin
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    with pytest.raises(StateConflict) as refused:
        services.approve_request(actor=admin, request=order.trade_request)
    assert refused.value.code == "awaiting_payment"

    _confirm(seller, order)
    order.refresh_from_db()
    request = order.trade_request
    assert request.status == TradeRequest.Status.PENDING
    assert (order.payment_amount, order.payment_reference) == (
        Decimal("4750.00"),
        "ICBC-20261205-0042",
    )
    assert order.payment_confirmed_by == seller
    assert request in list_pending_requests()

    services.approve_request(actor=admin, request=request)
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    assert get_account_balance(account=buyer_account)["active"] == 50
    assert get_account_balance(account=seller_account)["reserved"] == 0
    transfers = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TRANSFER)
    assert sum(e.quantity for e in transfers) == 50
    assert {e.price_per_tonne for e in transfers} == {Decimal("95.00")}
    listing.refresh_from_db()
    assert listing.quantity_left == 150
    _ledger_ok()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": "4749.99"}, "amount_mismatch"),
        ({"amount": "-1"}, "not_positive"),
        ({"reference": "  "}, "required"),
        ({"paid_on": "tomorrow"}, "date_out_of_range"),
        ({"paid_on": "last year"}, "date_out_of_range"),
    ],
)
def test_a_payment_record_that_does_not_hold_is_refused(
    listing, seller, buyer, buyer_account, change, code
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    today = timezone.localdate()
    change = dict(change)
    if change.get("paid_on") == "tomorrow":
        change["paid_on"] = today + timedelta(days=1)
    elif change.get("paid_on") == "last year":
        change["paid_on"] = today - timedelta(days=365)
    with pytest.raises(ValidationError) as refused:
        _confirm(seller, order, **change)
    assert code in _codes(refused.value)
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT
    assert order.payment_confirmed_at is None


def test_only_the_seller_confirms_or_declines(listing, buyer, buyer_account):
    order = _order(buyer, buyer_account, listing, quantity=50)
    with pytest.raises(PermissionDenied):
        _confirm(buyer, order)
    with pytest.raises(PermissionDenied):
        market.decline_order(actor=buyer, order=order, reason="no")
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT


def test_confirming_the_same_payment_twice_changes_nothing(
    listing, seller, buyer, buyer_account
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    _confirm(seller, order)
    order.refresh_from_db()
    confirmed_at = order.payment_confirmed_at
    _confirm(seller, order)
    order.refresh_from_db()
    assert order.payment_confirmed_at == confirmed_at
    with pytest.raises(StateConflict) as refused:
        _confirm(seller, order, reference="ANOTHER-REF")
    assert refused.value.code == "not_awaiting_payment"


def test_whoever_confirmed_the_payment_cannot_settle_the_order(
    listing, seller_org, make_user, buyer, buyer_account
):
    # A registry admin who also acts for the seller: maker-checker holds.
    both = make_user(role=Role.REGISTRY_ADMIN, organization=seller_org)
    from registry.services import grant_role

    grant_role(user=both, role=Role.BUREAU_STAFF)
    order = _order(buyer, buyer_account, listing, quantity=50)
    _confirm(both, order)
    order.refresh_from_db()
    with pytest.raises(NotPermitted) as refused:
        services.approve_request(actor=both, request=order.trade_request)
    assert refused.value.code == "own_payment_confirmation"


def test_retire_on_delivery_retires_for_the_beneficiary_with_a_certificate(
    listing, seller, buyer, buyer_account, admin, operator
):
    order = _order(
        buyer,
        buyer_account,
        listing,
        quantity=50,
        retire_on_delivery=True,
        beneficiary="贵州省毕节市2026年生态文化旅游节",
        purpose=TradeRequest.Purpose.EVENT,
        reporting_year=2026,
    )
    _confirm(seller, order)
    order.refresh_from_db()
    services.approve_request(actor=admin, request=order.trade_request)
    order.refresh_from_db()
    retirement = order.retirement_request
    assert retirement.status == TradeRequest.Status.SETTLED
    assert (retirement.from_account, retirement.initiator) == (buyer_account, buyer)
    assert retirement.reviewed_by == admin
    certificate = Certificate.objects.get(trade_request=retirement)
    assert (certificate.account, certificate.quantity) == (buyer_account, 50)
    assert certificate.beneficiary == "贵州省毕节市2026年生态文化旅游节"
    assert certificate.number
    # Delivered and retired in one step: the buyer never holds them spendable.
    balance = get_account_balance(account=buyer_account)
    assert (balance["active"], balance["reserved"]) == (0, 0)
    retired = get_account_balance(account=operator.accounts.get(kind="retirement"))
    assert retired["retired"] == 50
    kinds = list(
        LedgerEntry.objects.filter(kind__in=["transfer", "retire"])
        .order_by("sequence")
        .values_list("kind", flat=True)
    )
    assert kinds == ["transfer", "retire"]
    # The sale is priced, the retirement is not.
    transfer = LedgerEntry.objects.get(kind="transfer")
    assert transfer.price_per_tonne == Decimal("95.00")
    assert retirement not in list_pending_requests()
    _ledger_ok()


# Every way an order fails gives its serials back ----------------------------------


def _assert_returned_to_listing(listing, order, left=200):
    listing.refresh_from_db()
    assert listing.quantity_left == left
    assert _listed_tonnes(listing) == left
    assert not order.trade_request.blocks.exists()
    assert LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.RETURN, trade_request=order.trade_request
    ).exists()
    _ledger_ok()


def test_a_declined_order_returns_its_serials_to_the_listing(
    listing, seller, buyer, buyer_account
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    with pytest.raises(ValidationError):
        market.decline_order(actor=seller, order=order, reason=" ")
    market.decline_order(actor=seller, order=order, reason="未收到货款")
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.DECLINED
    assert order.decline_reason == "未收到货款"
    _assert_returned_to_listing(listing, order)
    with pytest.raises(StateConflict):
        market.decline_order(actor=seller, order=order, reason="again")


def test_a_rejected_order_returns_its_serials_to_the_listing(
    listing, seller, buyer, buyer_account, admin
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    _confirm(seller, order)
    order.refresh_from_db()
    with pytest.raises(StateConflict):
        market.decline_order(actor=seller, order=order, reason="too late")
    services.reject_request(actor=admin, request=order.trade_request, reason="资料不全")
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.REJECTED
    _assert_returned_to_listing(listing, order)


def test_an_order_left_unpaid_expires_back_to_the_listing(
    listing, buyer, buyer_account
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    later = timezone.now() + timedelta(hours=169)
    assert services.expire_stale_requests(now=later) == 1
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.EXPIRED
    _assert_returned_to_listing(listing, order)


def test_a_failed_order_of_a_closed_listing_goes_back_to_the_seller(
    listing, seller, seller_account, buyer, buyer_account
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    market.withdraw_listing(actor=seller, listing=listing)
    market.decline_order(actor=seller, order=order, reason="withdrawn")
    listing.refresh_from_db()
    assert listing.quantity_left == 0
    assert get_account_balance(account=seller_account)["active"] == 900
    assert LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.RELEASE, trade_request=order.trade_request
    ).exists()
    _ledger_ok()


def test_a_second_buyer_for_the_last_lot_gets_a_clear_answer(
    listing, seller, buyer, buyer_account, make_user, seller_org
):
    from registry import services as registry_services
    from registry.models import Organization

    other_org = registry_services.create_organization(
        name_zh="第二买方",
        name_en="Second buyer",
        kind=Organization.Kind.BUYER,
        uscc="91520100MA6H3QW6LE",
    )
    other = make_user(role=Role.BUYER, organization=other_org)
    stale = Listing.objects.get(pk=listing.pk)  # as the second buyer saw it
    _order(buyer, buyer_account, listing, quantity=200)
    with pytest.raises(StateConflict) as refused:
        _order(other, other_org.accounts.get(kind="holding"), stale, quantity=200)
    assert refused.value.code == "sold_out"
    assert Order.objects.count() == 1
    _ledger_ok()


# verify_ledger sees the market's invariants -----------------------------------------


def test_verify_ledger_reports_a_listing_whose_left_differs_from_its_blocks(
    listing, buyer, buyer_account
):
    _order(buyer, buyer_account, listing, quantity=50)
    _ledger_ok()
    Listing.objects.filter(pk=listing.pk).update(quantity_left=160)
    report = verify_ledger(record=False)
    assert {
        "check": "listing",
        "listing": listing.pk,
        "quantity_left": 160,
        "listed": 150,
    } in report.violations


def test_an_order_awaiting_payment_cannot_be_rejected_either(
    listing, buyer, buyer_account, admin
):
    order = _order(buyer, buyer_account, listing, quantity=50)
    with pytest.raises(StateConflict) as refused:
        services.reject_request(actor=admin, request=order.trade_request, reason="x")
    assert refused.value.code == "awaiting_payment"
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT
