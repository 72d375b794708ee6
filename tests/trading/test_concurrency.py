"""Real concurrency on PostgreSQL (the production-stack stage): many clients at
once, each on its own connection, and the ledger still allows exactly what the
balance allows; the market sells exactly what is listed."""

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from common.errors import DomainError, StateConflict
from registry import services as registry_services
from registry import uscc
from registry.models import Organization
from registry.roles import Role
from trading import market, services
from trading.models import CreditBlock, LedgerEntry, Listing, Order, TradeRequest
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


# The market ----------------------------------------------------------------------


def _buyers(make_user, count: int) -> list[tuple]:
    """``count`` buyer organizations, each with its own user: (user, holding
    account)."""
    buyers = []
    for n in range(count):
        body = f"91520100MA{n:07d}"
        organization = registry_services.create_organization(
            name_zh=f"买方{n}",
            name_en=f"Buyer {n}",
            kind=Organization.Kind.BUYER,
            uscc=body + uscc.check_character(body),
        )
        user = make_user(role=Role.BUYER, organization=organization)
        buyers.append((user, organization.accounts.get(kind="holding")))
    return buyers


def _list(seller, seller_account, batch, quantity, lot, key) -> Listing:
    return market.create_listing(
        actor=seller,
        account=seller_account,
        batch=batch,
        quantity=quantity,
        price_per_tonne="95",
        minimum_lot=lot,
        idempotency_key=key,
    )


def _tonnes(entries) -> int:
    return entries.aggregate(tonnes=Sum("quantity"))["tonnes"] or 0


def _listed(listing) -> int:
    return _tonnes(CreditBlock.objects.filter(listing=listing, state="listed"))


def _ordered(listing) -> int:
    return _tonnes(
        TradeRequest.objects.filter(order__listing=listing).values("quantity")
    )


def test_twenty_buyers_buying_a_listing_out_at_once_get_exactly_what_was_listed(
    reference_data, issue, seller, seller_account, make_user
):
    """Each buyer orders its lot again and again, what is left when less is
    left, until the listing is sold out: the listing's lock lets no tonne be
    sold twice, and every refusal says why."""
    batch = issue()  # the seller holds 900 t
    listing = _list(seller, seller_account, batch, 500, 5, "sale")
    buyers = _buyers(make_user, 20)

    def buy(n):
        user, account = buyers[n]
        lot = 5 + n % 11
        bought, refusals, quantity = [], [], lot
        while True:
            try:
                market.place_order(
                    actor=user,
                    listing=listing,
                    buyer_account=account,
                    quantity=quantity,
                    idempotency_key=f"buy-{n}-{len(bought) + len(refusals)}",
                )
            except StateConflict as refusal:
                refusals.append(refusal.code)
                if refusal.code == "sold_out":
                    return bought, refusals
                left = Listing.objects.get(pk=listing.pk).quantity_left
                quantity = min(lot, left) or lot
            else:
                bought.append(quantity)
                quantity = lot

    outcomes = _in_threads(buy, range(20), workers=20)
    bought = [tonnes for orders, _refusals in outcomes for tonnes in orders]
    refusals = [code for _orders, codes in outcomes for code in codes]
    assert sum(bought) == 500
    assert set(refusals) <= {"sold_out", "not_enough_left"}
    assert all(codes[-1] == "sold_out" for _orders, codes in outcomes)
    listing.refresh_from_db()
    assert (listing.status, listing.quantity_left) == ("open", 0)
    assert _listed(listing) == 0
    assert Order.objects.filter(listing=listing).count() == len(bought)
    assert _ordered(listing) == 500
    assert _tonnes(LedgerEntry.objects.filter(kind="order", listing=listing)) == 500
    balance = get_account_balance(account=seller_account)
    assert (balance["listed"], balance["reserved"], balance["active"]) == (0, 500, 400)
    report = verify_ledger(record=False)
    assert report.ok, report.violations


def test_the_seller_lowering_and_withdrawing_while_buyers_order_loses_no_tonne(
    reference_data, issue, seller, seller_account, make_user
):
    """Ten buyers order 20 t each while the seller lowers the listing to
    120 t and withdraws it, all at once, four times over (the withdrawal a
    little later each time): every tonne listed is ordered or given back
    exactly once."""
    batch = issue()  # the seller holds 900 t
    buyers = _buyers(make_user, 10)
    ordered_in_all = 0
    for round_ in range(4):
        listing = _list(seller, seller_account, batch, 200, 10, f"round-{round_}")

        def act(who, listing=listing, round_=round_):
            try:
                if who == "lower":
                    market.lower_listing(
                        actor=seller, listing=listing, quantity_left=120
                    )
                elif who == "withdraw":
                    # Later each round, so it meets the orders at other points.
                    time.sleep(0.02 * round_)
                    market.withdraw_listing(actor=seller, listing=listing)
                else:
                    user, account = buyers[who]
                    market.place_order(
                        actor=user,
                        listing=listing,
                        buyer_account=account,
                        quantity=20,
                        idempotency_key=f"round-{round_}-{who}",
                    )
            except (StateConflict, DomainError) as refusal:
                return who, refusal.code
            return who, "done"

        outcomes = dict(_in_threads(act, ["lower", "withdraw", *range(10)]))
        assert outcomes.pop("withdraw") == "done"
        # Lowered, or too late: fewer than 121 t were left, or it was closed.
        assert outcomes.pop("lower") in {"done", "not_lower", "listing_closed"}
        assert set(outcomes.values()) <= {"done", "listing_closed", "sold_out"}
        ordered = 20 * list(outcomes.values()).count("done")
        listing.refresh_from_db()
        assert (listing.status, listing.quantity_left) == ("withdrawn", 0)
        assert _listed(listing) == 0
        assert _ordered(listing) == ordered
        entries = LedgerEntry.objects.filter(listing=listing)
        assert _tonnes(entries.filter(kind="list")) == 200
        assert _tonnes(entries.filter(kind="order")) == ordered
        assert _tonnes(entries.filter(kind="delist")) == 200 - ordered
        ordered_in_all += ordered
        balance = get_account_balance(account=seller_account)
        assert (balance["listed"], balance["reserved"]) == (0, ordered_in_all)
        assert balance["active"] == 900 - ordered_in_all
        report = verify_ledger(record=False)
        assert report.ok, report.violations


def test_two_buyers_racing_for_the_last_lot_exactly_one_gets_it(
    reference_data, issue, seller, seller_account, make_user
):
    batch = issue()
    (first, first_account), *racers = _buyers(make_user, 3)
    for round_ in range(5):
        listing = _list(seller, seller_account, batch, 30, 10, f"last-{round_}")
        market.place_order(
            actor=first,
            listing=listing,
            buyer_account=first_account,
            quantity=20,
            idempotency_key=f"first-{round_}",
        )

        def race(racer, listing=listing, round_=round_):
            user, account = racer
            try:
                market.place_order(
                    actor=user,
                    listing=listing,
                    buyer_account=account,
                    quantity=10,
                    idempotency_key=f"last-{round_}",
                )
            except StateConflict as refusal:
                return refusal.code
            return "ordered"

        assert sorted(_in_threads(race, racers, workers=2)) == ["ordered", "sold_out"]
        listing.refresh_from_db()
        assert listing.quantity_left == 0
        assert _listed(listing) == 0
        assert _ordered(listing) == 30
    report = verify_ledger(record=False)
    assert report.ok, report.violations
