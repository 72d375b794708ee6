"""Real concurrency on PostgreSQL (the production-stack stage): many clients at
once, each on its own connection, and the ledger still allows exactly what the
balance allows."""

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from trading import services
from trading.models import TradeRequest
from trading.selectors import get_account_balance
from trading.verification import verify_ledger

pytestmark = [pytest.mark.production_stack, pytest.mark.django_db(transaction=True)]


def _in_threads(function, arguments, workers=16):
    barrier = threading.Barrier(min(workers, len(arguments)))

    def call(argument):
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            return function(argument)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, arguments))


def test_fifty_concurrent_overspends_leave_exactly_the_allowed_outcome(
    reference_data, issue, seller, seller_account, buyer_account
):
    assert connection.vendor == "postgresql"
    issue(quantity=1100, buffer=100)  # the seller holds 1,000 t

    def attempt(n):
        try:
            services.request_transfer(
                actor=seller,
                from_account=seller_account,
                to_account=buyer_account,
                quantity=30,
                price_per_tonne="80",
                idempotency_key=f"race-{n}",
            )
        except ValidationError as error:
            assert "Only" in error.message_dict["quantity"][0]
            return "refused"
        return "reserved"

    outcomes = _in_threads(attempt, range(50))
    assert outcomes.count("reserved") == 33  # 33 x 30 = 990 <= 1,000 < 34 x 30
    assert outcomes.count("refused") == 17
    balance = get_account_balance(account=seller_account)
    assert (balance["reserved"], balance["active"]) == (990, 10)
    assert verify_ledger(record=False).ok


def test_two_admins_approving_at_once_settle_once(
    reference_data, issue, seller, seller_account, buyer_account, admin, second_admin
):
    issue()
    request = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=100,
        price_per_tonne="80",
        idempotency_key="once",
    )

    def approve(reviewer):
        try:
            services.approve_request(actor=reviewer, request=request)
        except ValidationError:
            return "refused"
        return "settled"

    outcomes = _in_threads(approve, [admin, second_admin] * 5, workers=10)
    assert outcomes.count("settled") == 1
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    assert get_account_balance(account=buyer_account)["active"] == 100
    assert verify_ledger(record=False).ok


def test_the_same_idempotency_key_sent_concurrently_acts_once(
    reference_data, issue, seller, seller_account, buyer_account
):
    issue()

    def send(_):
        return services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=10,
            price_per_tonne="80",
            idempotency_key="same-key",
        ).pk

    assert len(set(_in_threads(send, range(12)))) == 1
    assert get_account_balance(account=seller_account)["reserved"] == 10


def test_transfers_and_reviews_racing_on_a_hot_account_keep_the_chain_whole(
    reference_data, issue, seller, seller_account, buyer_account, admin
):
    """Reservations from one account race with approvals of earlier ones (the
    approvals take the journal head while reservations hold the account): no
    deadlock, no lost tonne, one unbroken chain."""
    issue(quantity=1100, buffer=100)

    def trade(n):
        request = services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=1 + n % 5,
            price_per_tonne="80",
            idempotency_key=f"hot-{n}",
        )
        services.approve_request(actor=admin, request=request)
        return request.quantity

    moved = sum(_in_threads(trade, range(80), workers=8))
    assert get_account_balance(account=buyer_account)["active"] == moved == 240
    assert get_account_balance(account=seller_account)["active"] == 1000 - moved
    report = verify_ledger(record=False)
    assert report.ok, report.violations
    assert report.entries == 2 + 2 * 80
