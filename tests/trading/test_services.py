from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.models import Account
from tests.trading.conftest import new_key
from trading import services
from trading.models import CreditBlock, LedgerEntry, TradeRequest
from trading.selectors import get_account_balance
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        list(CreditBlock.objects.order_by("pk").values_list()),
        LedgerEntry.objects.count(),
        TradeRequest.objects.count(),
    )


def test_issuing_creates_the_batch_its_blocks_and_journal(issue, seller_account):
    batch = issue(quantity=1000, buffer=100)
    assert (batch.first_serial, batch.last_serial) == (1, 1000)
    held, withheld = batch.blocks.order_by("first_serial")
    assert (held.account, held.first_serial, held.last_serial) == (
        seller_account,
        1,
        900,
    )
    assert withheld.account.kind == Account.Kind.BUFFER_POOL
    assert (withheld.first_serial, withheld.last_serial) == (901, 1000)
    assert list(LedgerEntry.objects.values_list("kind", "quantity")) == [
        ("issue", 900),
        ("buffer", 100),
    ]
    assert batch.serial_label.endswith("-V2025-0000000001-0000001000")
    assert verify_ledger().ok


def test_serials_are_globally_unique_across_batches(issue):
    first, second = issue(quantity=10, buffer=0), issue(quantity=5, buffer=1)
    assert (second.first_serial, second.last_serial) == (11, 15)
    assert first.last_serial < second.first_serial


def test_issuing_ten_million_costs_the_same_rows_as_ten(issue):
    issue(quantity=1, buffer=0)  # first use creates the allocator and journal head
    with CaptureQueriesContext(connection) as small:
        issue(quantity=10, buffer=1)
    with CaptureQueriesContext(connection) as large:
        issue(quantity=10_000_000, buffer=1_000_000)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert CreditBlock.objects.count() == 5
    assert LedgerEntry.objects.count() == 5


@pytest.mark.parametrize(
    ("quantity", "buffer"), [(0, 0), (-5, 0), (10, 10), (10, -1), (10, 11)]
)
def test_bad_issuance_is_refused(issue, quantity, buffer):
    with pytest.raises(ValidationError):
        issue(quantity=quantity, buffer=buffer)
    assert not CreditBlock.objects.exists()


def test_only_registry_admins_issue(issue, seller, project, seller_account):
    from datetime import date

    with pytest.raises(PermissionDenied):
        services.issue_batch(
            actor=seller,
            project=project,
            vintage=2025,
            monitoring_start=date(2025, 1, 1),
            monitoring_end=date(2025, 12, 31),
            quantity=10,
            buffer_quantity=0,
            holder_account=seller_account,
        )


def _transfer(seller, seller_account, buyer_account, quantity=100, **extra):
    return services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=quantity,
        price_per_tonne=extra.pop("price", "95.70"),
        idempotency_key=extra.pop("key", None) or new_key(),
        **extra,
    )


def test_a_transfer_reserves_then_settles_on_approval(
    issue, seller, seller_account, buyer_account, admin
):
    issue(quantity=1000, buffer=100)
    request = _transfer(seller, seller_account, buyer_account, quantity=250)
    assert get_account_balance(account=seller_account) == {
        "active": 650,
        "listed": 0,
        "reserved": 250,
        "retired": 0,
        "cancelled": 0,
    }
    services.approve_request(actor=admin, request=request)
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    assert get_account_balance(account=seller_account)["active"] == 650
    assert get_account_balance(account=buyer_account)["active"] == 250
    transfer = LedgerEntry.objects.get(kind="transfer")
    assert (transfer.first_serial, transfer.last_serial) == (1, 250)
    assert transfer.price_per_tonne == D("95.70")
    assert verify_ledger().ok


def test_rejection_releases_the_serials_with_a_reason(
    issue, seller, seller_account, buyer_account, admin
):
    issue()
    request = _transfer(seller, seller_account, buyer_account, quantity=300)
    with pytest.raises(ValidationError):
        services.reject_request(actor=admin, request=request, reason=" ")
    services.reject_request(actor=admin, request=request, reason="Price not agreed")
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.REJECTED
    assert get_account_balance(account=seller_account)["active"] == 900
    assert LedgerEntry.objects.filter(kind="release").exists()
    assert verify_ledger().ok


def test_pending_requests_expire_and_release(
    issue, seller, seller_account, buyer_account, settings
):
    from datetime import timedelta

    from django.utils import timezone

    issue()
    request = _transfer(seller, seller_account, buyer_account, quantity=100)
    assert services.expire_stale_requests(now=timezone.now()) == 0
    later = timezone.now() + timedelta(hours=settings.TRADE_REQUEST_TTL_HOURS + 1)
    assert services.expire_stale_requests(now=later) == 1
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.EXPIRED
    assert get_account_balance(account=seller_account)["active"] == 900
    assert verify_ledger().ok


def test_retirement_and_cancellation_are_final(
    issue, seller, seller_account, admin, second_admin
):
    issue()
    retirement = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=40,
        beneficiary="贵州绿筑建设集团有限公司",
        purpose="voluntary",
        reporting_year=2026,
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=retirement)
    cancellation = services.request_cancellation(
        actor=admin,
        from_account=seller_account,
        quantity=10,
        note="Reversal after a fire",
        idempotency_key=new_key(),
    )
    with pytest.raises(ValidationError, match="another registry admin"):
        services.approve_request(actor=admin, request=cancellation)
    services.approve_request(actor=second_admin, request=cancellation)
    by_state = verify_ledger().by_state
    assert (by_state["retired"], by_state["cancelled"]) == (40, 10)
    retired = CreditBlock.objects.get(state="retired")
    assert retired.account.kind == Account.Kind.RETIREMENT
    # Retired serials are not active, so they cannot be requested again.
    with pytest.raises(ValidationError):
        services.request_retirement(
            actor=seller,
            from_account=seller_account,
            quantity=851,
            beneficiary="x",
            purpose="voluntary",
            reporting_year=2026,
            idempotency_key=new_key(),
        )


@pytest.mark.parametrize("quantity", [0, -3, "1.5", 2.5, "abc", "", None, "NaN"])
def test_bad_quantities_are_refused_and_nothing_changes(
    issue, seller, seller_account, buyer_account, quantity
):
    issue()
    before = _snapshot()
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buyer_account, quantity=quantity)
    assert "quantity" in raised.value.message_dict
    assert _snapshot() == before


def test_more_than_the_unreserved_balance_is_refused(
    issue, seller, seller_account, buyer_account
):
    issue(quantity=1000, buffer=100)
    _transfer(seller, seller_account, buyer_account, quantity=800)
    before = _snapshot()
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buyer_account, quantity=101)
    assert "Only 100 t are available" in raised.value.message_dict["quantity"][0]
    # The code survives for the API's error body.
    assert raised.value.error_dict["quantity"][0].code == "insufficient_credits"
    assert _snapshot() == before


def test_foreign_accounts_cannot_be_spent(issue, buyer, seller_account, buyer_account):
    issue()
    with pytest.raises(PermissionDenied):
        _transfer(buyer, seller_account, buyer_account)
    assert not TradeRequest.objects.exists()


def test_negative_or_non_numeric_prices_are_refused(
    issue, seller, seller_account, buyer_account
):
    issue()
    for price in ("-1", "abc"):
        with pytest.raises(ValidationError) as raised:
            _transfer(seller, seller_account, buyer_account, price=price)
        assert "price_per_tonne" in raised.value.message_dict
    assert not TradeRequest.objects.exists()


def test_a_request_settles_at_most_once(
    issue, seller, seller_account, buyer_account, admin, second_admin
):
    issue()
    request = _transfer(seller, seller_account, buyer_account)
    services.approve_request(actor=admin, request=request)
    entries = LedgerEntry.objects.count()
    with pytest.raises(ValidationError) as raised:
        services.approve_request(actor=second_admin, request=request)
    assert raised.value.code == "not_pending"
    assert raised.value.messages == [
        "This request is already settled; it cannot be reviewed again."
    ]
    with pytest.raises(ValidationError) as raised:
        services.reject_request(actor=second_admin, request=request, reason="late")
    assert raised.value.code == "not_pending"
    assert LedgerEntry.objects.count() == entries


def test_the_approver_is_never_the_initiator(issue, admin, seller_account):
    issue()
    request = services.request_cancellation(
        actor=admin,
        from_account=seller_account,
        quantity=5,
        note="Duplicate issuance",
        idempotency_key=new_key(),
    )
    with pytest.raises(ValidationError) as raised:
        services.approve_request(actor=admin, request=request)
    assert raised.value.code == "own_request"
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING


def test_non_admins_cannot_review_or_cancel(
    issue, seller, buyer, seller_account, buyer_account
):
    issue()
    request = _transfer(seller, seller_account, buyer_account)
    for actor in (seller, buyer):
        with pytest.raises(PermissionDenied):
            services.approve_request(actor=actor, request=request)
    with pytest.raises(PermissionDenied):
        services.request_cancellation(
            actor=seller,
            from_account=seller_account,
            quantity=1,
            note="x",
            idempotency_key=new_key(),
        )


def test_the_same_key_and_body_act_once_and_a_different_body_is_refused(
    issue, seller, seller_account, buyer_account
):
    issue()
    first = _transfer(seller, seller_account, buyer_account, quantity=10, key="order-7")
    entries = LedgerEntry.objects.count()
    again = _transfer(seller, seller_account, buyer_account, quantity=10, key="order-7")
    assert again.pk == first.pk
    assert LedgerEntry.objects.count() == entries
    assert get_account_balance(account=seller_account)["reserved"] == 10
    with pytest.raises(ValidationError) as raised:
        _transfer(seller, seller_account, buyer_account, quantity=11, key="order-7")
    assert raised.value.code == "idempotency_conflict"


def test_a_request_for_one_batch_or_vintage_takes_only_those(
    issue, seller, seller_account, buyer_account
):
    old = issue(quantity=100, buffer=0, vintage=2023)
    issue(quantity=100, buffer=0, vintage=2025)
    request = _transfer(
        seller, seller_account, buyer_account, quantity=60, vintage=2025
    )
    reserved = request.blocks.get()
    assert reserved.batch.vintage == 2025
    request = _transfer(seller, seller_account, buyer_account, quantity=30, batch=old)
    assert request.blocks.get().batch == old
    with pytest.raises(ValidationError):
        _transfer(seller, seller_account, buyer_account, quantity=50, vintage=2025)


def test_a_monitoring_period_of_a_project_is_issued_once(
    admin, project, seller_account, operator
):
    def issue(start, end):
        return services.issue_batch(
            actor=admin,
            project=project,
            vintage=end.year,
            monitoring_start=start,
            monitoring_end=end,
            quantity=100,
            buffer_quantity=10,
            holder_account=seller_account,
        )

    first = issue(date(2024, 1, 1), date(2024, 12, 31))
    before = _snapshot()
    with pytest.raises(ValidationError) as raised:
        issue(date(2024, 12, 31), date(2025, 6, 30))  # shares one day
    error = raised.value.error_dict["monitoring_start"][0]
    assert error.code == "period_issued"
    assert first.serial_label in error.message
    assert _snapshot() == before
    issue(date(2025, 1, 1), date(2025, 12, 31))  # the next period is fine
