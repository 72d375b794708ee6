"""Ledger steps the mutation run found loosely pinned (trading/services.py on
SQLite, where Python takes the steps PostgreSQL's functions take): which
serials a reservation takes and in what order the journal records them and
their release or settlement, who and when each entry and block records, the
reviewer's and the request's refusals in exact words, and which expired
requests a review releases."""

import itertools
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.models import Account
from tests.trading.conftest import new_key
from trading import services
from trading.models import CreditBlock, LedgerEntry, TradeRequest
from trading.verification import verify_ledger

from .test_services import _transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticking_clock(monkeypatch):
    """Every reading of the clock is a second after the one before, so a step
    that stamps two rows with one reading is told apart from one that reads
    the clock twice."""
    start = timezone.now()
    ticks = itertools.count(1)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=next(ticks)))


def _ranges(blocks):
    return [(block.first_serial, block.last_serial) for block in blocks]


def _entries(kind, request):
    return list(
        LedgerEntry.objects.filter(kind=kind, trade_request=request).order_by(
            "sequence"
        )
    )


@pytest.fixture
def scattered(issue, seller, seller_account, buyer_account, admin, ticking_clock):
    """The seller's 900 t of one batch as three blocks whose row order is not
    their serial order: 1-50 (oldest row), 101-900, then 51-100 (newest row),
    left so by two rejected requests splitting the original block."""
    issue(quantity=1000, buffer=100)
    for quantity in (100, 50):
        request = _transfer(seller, seller_account, buyer_account, quantity=quantity)
        services.reject_request(actor=admin, request=request, reason="Not now")
    blocks = CreditBlock.objects.filter(account=seller_account).order_by("pk")
    assert _ranges(blocks) == [(1, 50), (101, 900), (51, 100)]
    assert {block.state for block in blocks} == {CreditBlock.State.ACTIVE}
    return blocks


@pytest.fixture
def reserved(scattered, seller, seller_account, buyer_account):
    """A transfer of 150 t from the scattered blocks."""
    return _transfer(
        seller, seller_account, buyer_account, quantity=150, key="order-150"
    )


def test_a_reservation_takes_the_lowest_serials_and_splits_the_last_block(
    reserved, seller, seller_account
):
    """Kills _reserve 39 (blocks of one batch in row order, not serial order)."""
    taken = CreditBlock.objects.filter(trade_request=reserved).order_by("first_serial")
    assert _ranges(taken) == [(1, 50), (51, 100), (101, 150)]
    assert [block.quantity for block in taken] == [50, 50, 50]
    assert {block.state for block in taken} == {CreditBlock.State.RESERVED}
    left = CreditBlock.objects.filter(
        account=seller_account, state=CreditBlock.State.ACTIVE
    )
    assert _ranges(left) == [(151, 900)]


def test_a_reservation_journals_each_block_by_the_requester_at_one_time(
    reserved, seller, seller_account
):
    """One reserve entry per block taken, in serial order, by the requester,
    under the request's idempotency key, stamped with the time every touched
    block records (whole blocks and the split one alike). Kills _reserve 101,
    115, 118, 122, 123."""
    entries = _entries(LedgerEntry.Kind.RESERVE, reserved)
    assert [
        (
            entry.first_serial,
            entry.last_serial,
            entry.quantity,
            entry.from_account_id,
            entry.to_account_id,
            entry.actor_id,
            entry.idempotency_key,
        )
        for entry in entries
    ] == [
        (first, last, 50, seller_account.pk, seller_account.pk, seller.pk, "order-150")
        for first, last in [(1, 50), (51, 100), (101, 150)]
    ]
    stamp = entries[0].created_at
    assert {entry.created_at for entry in entries} == {stamp}
    taken = CreditBlock.objects.filter(trade_request=reserved)
    assert {block.updated_at for block in taken} == {stamp}
    assert verify_ledger().ok


def test_a_rejection_releases_the_blocks_in_serial_order_by_the_reviewer(
    reserved, admin, seller_account
):
    """Kills _release 17, 33, 35, 39 and reject_request 14."""
    services.reject_request(actor=admin, request=reserved, reason=" Price too low ")
    reserved.refresh_from_db()
    assert reserved.status == TradeRequest.Status.REJECTED
    assert reserved.reviewed_by == admin
    assert reserved.review_reason == "Price too low"
    entries = _entries(LedgerEntry.Kind.RELEASE, reserved)
    assert [
        (
            entry.first_serial,
            entry.last_serial,
            entry.from_account_id,
            entry.to_account_id,
            entry.actor_id,
        )
        for entry in entries
    ] == [
        (first, last, seller_account.pk, seller_account.pk, admin.pk)
        for first, last in [(1, 50), (51, 100), (101, 150)]
    ]
    stamp = entries[0].created_at
    assert {entry.created_at for entry in entries} == {stamp}
    released = CreditBlock.objects.filter(
        account=seller_account, first_serial__lte=150
    ).order_by("first_serial")
    assert _ranges(released) == [(1, 50), (51, 100), (101, 150)]
    assert {(block.state, block.trade_request_id) for block in released} == {
        (CreditBlock.State.ACTIVE, None)
    }
    assert {block.updated_at for block in released} == {stamp}
    assert verify_ledger().ok


def test_an_approval_settles_the_blocks_in_serial_order_by_the_reviewer(
    reserved, admin, seller_account, buyer_account
):
    """The buyer gets the blocks; the journal records them in serial order, at
    the price and currency agreed, by the approver, at the review time the
    request and the blocks record. Kills _settle 4, 7, 35, 53, 55, 69, 71,
    73, 77 and approve_request 6."""
    approved = services.approve_request(actor=admin, request=reserved)
    assert approved.reviewed_by == admin
    reserved.refresh_from_db()
    assert reserved.status == TradeRequest.Status.SETTLED
    assert reserved.reviewed_by == admin
    assert reserved.reviewed_at == approved.reviewed_at
    entries = _entries(LedgerEntry.Kind.TRANSFER, reserved)
    assert [
        (
            entry.first_serial,
            entry.last_serial,
            entry.from_account_id,
            entry.to_account_id,
            entry.price_per_tonne,
            entry.currency,
            entry.actor_id,
            entry.created_at,
        )
        for entry in entries
    ] == [
        (
            first,
            last,
            seller_account.pk,
            buyer_account.pk,
            D("95.70"),
            "CNY",
            admin.pk,
            reserved.reviewed_at,
        )
        for first, last in [(1, 50), (51, 100), (101, 150)]
    ]
    moved = CreditBlock.objects.filter(account=buyer_account).order_by("first_serial")
    assert _ranges(moved) == [(1, 50), (51, 100), (101, 150)]
    assert {(b.state, b.trade_request_id, b.updated_at) for b in moved} == {
        (CreditBlock.State.ACTIVE, None, reserved.reviewed_at)
    }
    assert verify_ledger().ok


def test_a_settled_retirement_records_no_price_and_no_currency(
    issue, seller, seller_account, admin
):
    """A request without a price settles with no currency on its entries,
    though the request row keeps its default. Kills _settle 54, 55, 56."""
    issue(quantity=100, buffer=0)
    retirement = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=30,
        beneficiary="贵州绿筑建设集团有限公司",
        purpose="voluntary",
        reporting_year=2026,
        idempotency_key=new_key(),
    )
    assert retirement.currency == "CNY"
    services.approve_request(actor=admin, request=retirement)
    (entry,) = _entries(LedgerEntry.Kind.RETIRE, retirement)
    assert (entry.first_serial, entry.last_serial) == (1, 30)
    assert (entry.price_per_tonne, entry.currency) == (None, "")
    assert entry.actor_id == admin.pk


@pytest.mark.parametrize("step", ["approve", "reject"])
def test_only_a_registry_admin_reviews_in_these_words(
    issue, seller, buyer, seller_account, buyer_account, step
):
    """Kills _check_reviewer 6, 8, 9, 10."""
    issue()
    request = _transfer(seller, seller_account, buyer_account)
    for actor in (seller, buyer):
        with pytest.raises(PermissionDenied) as raised:
            if step == "approve":
                services.approve_request(actor=actor, request=request)
            else:
                services.reject_request(actor=actor, request=request, reason="No")
        assert str(raised.value) == "Only a registry admin can review requests."
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING


@pytest.mark.parametrize("step", ["approve", "reject"])
def test_the_initiator_may_not_review_in_these_words(
    issue, admin, seller_account, step
):
    """Kills _check_reviewer 17, 18."""
    issue()
    request = services.request_cancellation(
        actor=admin,
        from_account=seller_account,
        quantity=5,
        note="Duplicate issuance",
        idempotency_key=new_key(),
    )
    with pytest.raises(PermissionDenied) as raised:
        if step == "approve":
            services.approve_request(actor=admin, request=request)
        else:
            services.reject_request(actor=admin, request=request, reason="Mine")
    assert raised.value.code == "own_request"
    assert raised.value.messages == [
        "You made this request, so another registry admin must review it."
    ]
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rejection_needs_a_reason_in_these_words(
    issue, seller, seller_account, buyer_account, admin, reason
):
    """Kills reject_request 6, 7, 8, 10, 11, 12."""
    issue()
    request = _transfer(seller, seller_account, buyer_account)
    with pytest.raises(ValidationError) as raised:
        services.reject_request(actor=admin, request=request, reason=reason)
    assert raised.value.message_dict == {
        "reason": ["Give a reason: the requester will see it."]
    }
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RELEASE).exists()


def test_a_transfer_goes_only_to_a_holding_account_in_these_words(
    issue, seller, seller_account, operator
):
    """Kills _holding 2-15."""
    issue()
    buffer_pool = operator.accounts.get(kind=Account.Kind.BUFFER_POOL)
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buffer_pool)
    assert raised.value.code == "account_kind"
    (error,) = raised.value.error_dict["to_account"]
    assert error.code == "account_kind"
    assert raised.value.message_dict == {
        "to_account": ["Credits can only be transferred to a holding account."]
    }
    assert not TradeRequest.objects.exists()


def test_not_enough_credits_is_refused_in_these_words(
    issue, seller, seller_account, buyer_account
):
    """Kills _not_enough 11, 14."""
    issue(quantity=2000, buffer=500)
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buyer_account, quantity=2000)
    assert raised.value.code == "insufficient_credits"
    assert raised.value.message_dict == {
        "quantity": [
            "Only 1,500 t are available (not reserved) in account "
            f"{seller_account.number} for this request; 2,000 t were asked for."
        ]
    }
    assert not TradeRequest.objects.exists()


@pytest.fixture
def overdue_elsewhere(issue, buyer, buyer_account, seller_account):
    """A pending request of the buyer's account, past its expiry."""
    issue(quantity=100, buffer=0, holder=buyer_account)
    request = _transfer(buyer, buyer_account, seller_account, quantity=20)
    TradeRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    return request


@pytest.mark.parametrize("step", ["approve", "reject"])
def test_a_review_releases_its_own_accounts_expired_requests_only(
    issue, seller, seller_account, buyer_account, admin, overdue_elsewhere, step
):
    """A review first releases the expired requests of the account credits
    leave, and no other account's (each account's next step, or the beat
    task, releases those). Kills approve_request 5, reject_request 13."""
    issue(quantity=100, buffer=0)
    overdue = _transfer(seller, seller_account, buyer_account, quantity=10)
    TradeRequest.objects.filter(pk=overdue.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    request = _transfer(seller, seller_account, buyer_account, quantity=5)
    if step == "approve":
        services.approve_request(actor=admin, request=request)
    else:
        services.reject_request(actor=admin, request=request, reason="No")
    overdue.refresh_from_db()
    assert overdue.status == TradeRequest.Status.EXPIRED
    overdue_elsewhere.refresh_from_db()
    assert overdue_elsewhere.status == TradeRequest.Status.PENDING
    assert overdue_elsewhere.blocks.get().state == CreditBlock.State.RESERVED


def test_finished_requests_past_their_expiry_cost_one_read_to_skip(
    issue, seller, seller_account, buyer_account, admin, settings
):
    """Settled and rejected requests are not revisited once their expiry has
    passed: finding nothing to release is one read, no lock, no write. Kills
    release_expired 6."""
    issue()
    settled = _transfer(seller, seller_account, buyer_account, quantity=10)
    services.approve_request(actor=admin, request=settled)
    rejected = _transfer(seller, seller_account, buyer_account, quantity=10)
    services.reject_request(actor=admin, request=rejected, reason="No")
    later = timezone.now() + timedelta(hours=settings.TRADE_REQUEST_TTL_HOURS + 1)
    for account_id in (seller_account.pk, None):
        with CaptureQueriesContext(connection) as queries:
            assert services.release_expired(account_id=account_id, now=later) == []
        assert len(queries.captured_queries) == 1
