"""Tests that bite: each fails on a specific, plausible mistake that the rest of
the suite let through (issue 14). Query-count tests grow the thing that could
multiply (N = 1 and N = 20 give the same count); ledger tests run on SQLite
(trading.services' Python steps) and on PostgreSQL (trading/db_guards.py)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from registry import services as registry_services
from tests.registry.factories import MembershipFactory, OrganizationFactory
from tests.trading.conftest import new_key
from trading import services
from trading.models import CreditBlock, LedgerEntry, TradeRequest
from trading.selectors import get_account_balance

pytestmark = pytest.mark.django_db


def _transfer(seller, seller_account, buyer_account, quantity):
    return services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=quantity,
        price_per_tonne="90.00",
        idempotency_key=new_key(),
    )


def _retire(seller, seller_account, quantity):
    return services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=quantity,
        beneficiary="林场自用",
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
    )


# Expiry ---------------------------------------------------------------------------


def test_an_expired_request_is_not_settled_and_nothing_moves(
    issue, seller, seller_account, buyer_account, admin
):
    """Both settle steps (Python ``_settle`` on SQLite, ``trading_settle`` on
    PostgreSQL) refuse a request past its expiry, even before anything has
    released it: here the release that approval starts with is switched off,
    as when the request expires between that release and the settlement
    (tests/trading/test_expiry.py has approval with its release)."""
    issue(quantity=1000, buffer=0)
    request = _transfer(seller, seller_account, buyer_account, quantity=100)
    TradeRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    blocks_before = list(
        CreditBlock.objects.order_by("pk").values_list(
            "pk", "account_id", "state", "first_serial", "last_serial"
        )
    )
    entries_before = LedgerEntry.objects.count()

    with (
        mock.patch.object(services, "release_expired", return_value=[]),
        pytest.raises(ValidationError) as refused,
    ):
        services.approve_request(actor=admin, request=request)

    assert refused.value.code == "expired"
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING
    assert request.reviewed_by_id is None
    assert request.reviewed_at is None
    assert get_account_balance(account=buyer_account)["active"] == 0
    assert get_account_balance(account=seller_account)["reserved"] == 100
    assert (
        list(
            CreditBlock.objects.order_by("pk").values_list(
                "pk", "account_id", "state", "first_serial", "last_serial"
            )
        )
        == blocks_before
    )
    assert LedgerEntry.objects.count() == entries_before
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TRANSFER).exists()
    # The expiry task then releases it.
    assert services.expire_stale_requests() == 1
    assert get_account_balance(account=seller_account)["active"] == 1000


def test_an_unexpired_request_still_settles(
    issue, seller, seller_account, buyer_account, admin
):
    """The other side of the expiry check: a request a minute from its expiry
    settles (a check that refused everything would fail here)."""
    issue(quantity=1000, buffer=0)
    request = _transfer(seller, seller_account, buyer_account, quantity=100)
    TradeRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() + timedelta(minutes=1)
    )
    services.approve_request(actor=admin, request=request)
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    assert get_account_balance(account=buyer_account)["active"] == 100


# Oldest batch first -----------------------------------------------------------------


def _reserved_ranges(request):
    return list(
        CreditBlock.objects.filter(
            trade_request=request, state=CreditBlock.State.RESERVED
        )
        .order_by("first_serial")
        .values_list("batch_id", "first_serial", "last_serial")
    )


def test_reservations_spend_the_oldest_batch_first_by_issue_time(
    issue, seller, seller_account, buyer_account
):
    """The batch issued earliest is spent first, whatever its id: the second
    batch made here is back-dated, so neither id order nor its reverse gives
    the right answer; only ``issued_at`` ascending does. The request takes all
    of the older batch and splits the newer one."""
    newer = issue(quantity=100, buffer=0)  # serials 1..100, lower id
    older = issue(quantity=50, buffer=0)  # serials 101..150, higher id
    type(older).objects.filter(pk=older.pk).update(
        issued_at=newer.issued_at - timedelta(days=365)
    )

    request = _transfer(seller, seller_account, buyer_account, quantity=70)

    assert _reserved_ranges(request) == [(newer.pk, 1, 20), (older.pk, 101, 150)]
    reserve_entries = list(
        LedgerEntry.objects.filter(trade_request=request, kind="reserve")
        .order_by("sequence")
        .values_list("batch_id", "first_serial", "last_serial")
    )
    assert reserve_entries == [(older.pk, 101, 150), (newer.pk, 1, 20)]
    active = list(
        CreditBlock.objects.filter(account=seller_account, state="active")
        .order_by("first_serial")
        .values_list("batch_id", "first_serial", "last_serial")
    )
    assert active == [(newer.pk, 21, 100)]


def test_reservations_spend_the_oldest_batch_first_in_issue_order(
    issue, seller, seller_account, buyer_account
):
    """Without back-dating: the first batch issued is the first spent."""
    first = issue(quantity=30, buffer=0)
    issue(quantity=30, buffer=0)
    request = _transfer(seller, seller_account, buyer_account, quantity=10)
    assert _reserved_ranges(request) == [(first.pk, 1, 10)]


# Query counts that must not grow ------------------------------------------------------


def test_dashboard_costs_the_same_queries_for_1_or_20_certificates(
    client, issue, seller, seller_account, admin
):
    issue(quantity=1000, buffer=0)
    services.approve_request(
        actor=admin, request=_retire(seller, seller_account, quantity=1)
    )
    client.force_login(seller)
    url = reverse("trading:dashboard")
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        first = client.get(url)
    assert first.content.decode().count("/certificate.pdf") == 1
    for _ in range(19):
        services.approve_request(
            actor=admin, request=_retire(seller, seller_account, quantity=1)
        )
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("/certificate.pdf") == 20
    assert len(twenty) == len(one), [query["sql"] for query in twenty]


def _more_accounts(user, count):
    """``count`` more organizations with a holding account each, all the user's."""
    numbers = []
    for _ in range(count):
        organization = OrganizationFactory()
        MembershipFactory(user=user, organization=organization)
        account = registry_services.open_account(
            organization=organization, kind="holding"
        )
        numbers.append(account.number)
    return numbers


def test_account_page_costs_the_same_queries_for_1_or_20_accounts(
    client, issue, seller, seller_account
):
    issue(quantity=1000, buffer=100)
    client.force_login(seller)
    url = reverse("trading:account-list")
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        first = client.get(url)
    assert first.content.decode().count("/ledger/accounts/BJ-") == 1
    numbers = _more_accounts(seller, 19)
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert all(number in body for number in [seller_account.number, *numbers])
    assert body.count("/ledger/accounts/BJ-") == 20
    assert '<td class="num">900</td>' in body  # the seller's active tonnes
    assert len(twenty) == len(one), [query["sql"] for query in twenty]


def test_api_account_list_costs_the_same_queries_for_1_or_20_accounts(
    issue, seller, seller_account, monkeypatch
):
    from django.core.cache.backends.locmem import LocMemCache
    from rest_framework.throttling import SimpleRateThrottle

    # Throttles count in a private cache (Redis is shared in the production stage).
    monkeypatch.setattr(SimpleRateThrottle, "cache", LocMemCache("h5-biting", {}))
    issue(quantity=1000, buffer=100)
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(seller)
    url = "/api/v1/accounts/?page_size=50"
    api.get(url)
    with CaptureQueriesContext(connection) as one:
        first = api.get(url).json()
    assert [row["number"] for row in first["results"]] == [seller_account.number]
    _more_accounts(seller, 19)
    with CaptureQueriesContext(connection) as twenty:
        response = api.get(url)
    rows = response.json()["results"]
    assert response.status_code == 200
    assert len(rows) == 20
    balances = {row["number"]: row["balance"] for row in rows}
    assert balances[seller_account.number]["active"] == 900
    assert len(twenty) == len(one), [query["sql"] for query in twenty]
