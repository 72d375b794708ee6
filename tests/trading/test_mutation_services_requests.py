"""The rules of making a request (transfer, retirement, cancellation) that the
mutation run found untested: who may spend from which account and each
refusal's field, code and exact words; the idempotency key's limits; every
field a request stores; the batch or vintage it is limited to; the idempotency
hash's canonical form and whose key a retry meets; and that making a request
re-checks nothing the database enforces (no extra round trips)."""

import hashlib
import re
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from registry.models import Account
from registry.roles import Role
from tests.trading.conftest import new_key
from trading import services
from trading.models import LedgerEntry, TradeRequest

pytestmark = pytest.mark.django_db

STORED = (
    "kind",
    "status",
    "from_account",
    "to_account",
    "quantity",
    "batch",
    "vintage",
    "price_per_tonne",
    "currency",
    "beneficiary",
    "beneficiary_public",
    "purpose",
    "note",
    "reporting_year",
    "initiator",
    "idempotency_key",
)


def _stored(request: TradeRequest) -> dict:
    return TradeRequest.objects.values(*STORED).get(pk=request.pk)


def _transfer(actor, from_account, to_account, quantity=10, **extra):
    return services.request_transfer(
        actor=actor,
        from_account=from_account,
        to_account=to_account,
        quantity=quantity,
        price_per_tonne=extra.pop("price", "95.70"),
        idempotency_key=extra.pop("key", None) or new_key(),
        **extra,
    )


def _retirement(actor, from_account, quantity=10, **extra):
    return services.request_retirement(
        actor=actor,
        from_account=from_account,
        quantity=quantity,
        beneficiary=extra.pop("beneficiary", "贵州绿筑建设集团有限公司"),
        purpose=extra.pop("purpose", "voluntary"),
        reporting_year=extra.pop("reporting_year", 2026),
        idempotency_key=extra.pop("key", None) or new_key(),
        **extra,
    )


def _cancellation(actor, from_account, quantity=10, **extra):
    return services.request_cancellation(
        actor=actor,
        from_account=from_account,
        quantity=quantity,
        note=extra.pop("note", "Reversal after a fire"),
        idempotency_key=extra.pop("key", None) or new_key(),
        **extra,
    )


def _refused(exception, call):
    with translation.override("en"), pytest.raises(exception) as raised:
        call()
    return raised.value


# Who may spend, from which account -------------------------------------------------


def test_spending_another_organizations_account_is_refused_in_words(
    issue, buyer, seller_account, buyer_account
):
    """_check_may_spend 15, 17-19."""
    issue()
    refusal = _refused(
        PermissionDenied, lambda: _transfer(buyer, seller_account, buyer_account)
    )
    assert str(refusal) == (
        "You can only move credits out of your own organization's accounts."
    )
    assert not TradeRequest.objects.exists()


def test_credits_leave_only_a_holding_account(
    issue, make_user, operator, buyer_account
):
    """_check_may_spend 21-30: staff of the registry operator may trade, yet
    not out of its buffer pool."""
    issue(buffer=100)
    staff = make_user(role=Role.BUREAU_STAFF, organization=operator)
    pool = operator.accounts.get(kind=Account.Kind.BUFFER_POOL)
    refusal = _refused(ValidationError, lambda: _transfer(staff, pool, buyer_account))
    assert refusal.code == "account_kind"
    assert refusal.messages == ["Credits can only leave a holding account."]
    assert not TradeRequest.objects.exists()


def test_a_transfer_to_the_same_account_is_refused_on_to_account(
    issue, seller, seller_account
):
    """request_transfer 8-21."""
    issue()
    refusal = _refused(
        ValidationError, lambda: _transfer(seller, seller_account, seller_account)
    )
    assert refusal.message_dict == {
        "to_account": ["Choose another account to transfer to."]
    }
    assert refusal.error_dict["to_account"][0].code == "same_account"
    assert not TradeRequest.objects.exists()


# Retirement and cancellation refusals ----------------------------------------------


@pytest.mark.parametrize("beneficiary", ["", "   "])
def test_a_retirement_names_its_beneficiary(
    issue, seller, seller_account, operator, beneficiary
):
    """request_retirement 8-14."""
    issue()
    refusal = _refused(
        ValidationError,
        lambda: _retirement(seller, seller_account, beneficiary=beneficiary),
    )
    assert refusal.message_dict == {"beneficiary": ["Name the beneficiary."]}
    assert not TradeRequest.objects.exists()


def test_a_retirement_purpose_comes_from_the_list(
    issue, seller, seller_account, operator
):
    """request_retirement 16-22."""
    issue()
    refusal = _refused(
        ValidationError,
        lambda: _retirement(seller, seller_account, purpose="greenwashing"),
    )
    assert refusal.message_dict == {"purpose": ["Choose a purpose from the list."]}
    assert not TradeRequest.objects.exists()


def test_only_a_registry_admin_requests_a_cancellation_in_words(
    issue, seller, seller_account
):
    """request_cancellation 6, 8-10."""
    issue()
    refusal = _refused(PermissionDenied, lambda: _cancellation(seller, seller_account))
    assert str(refusal) == "Only a registry admin can cancel credits."
    assert not TradeRequest.objects.exists()


@pytest.mark.parametrize("note", ["", "  "])
def test_a_cancellation_gives_its_reason(issue, admin, seller_account, note):
    """request_cancellation 12-18."""
    issue()
    refusal = _refused(
        ValidationError, lambda: _cancellation(admin, seller_account, note=note)
    )
    assert refusal.message_dict == {"note": ["Give the reason for the cancellation."]}
    assert not TradeRequest.objects.exists()


# The idempotency key ---------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "   ", "k" * 101])
def test_a_request_needs_a_key_of_1_to_100_characters(
    issue, seller, seller_account, buyer_account, key
):
    """_create_request 3, 7, 8, 9, 11, 13-17 (None is no key; 101 is too long)."""
    issue()

    def call():
        return services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=10,
            price_per_tonne="95.70",
            idempotency_key=key,
        )

    refusal = _refused(ValidationError, call)
    assert refusal.code == "idempotency_key"
    assert refusal.messages == [
        "Every request needs an idempotency key of 1 to 100 characters."
    ]
    assert not TradeRequest.objects.exists()


def test_a_key_of_exactly_100_characters_is_accepted_and_kept_trimmed(
    issue, seller, seller_account, buyer_account
):
    """_create_request 6."""
    issue()
    key = "k" * 100
    request = _transfer(seller, seller_account, buyer_account, key=f"  {key} ")
    assert _stored(request)["idempotency_key"] == key


# What a request stores -------------------------------------------------------------


def test_a_transfer_stores_its_fields_in_cny_with_an_empty_note_by_default(
    issue, seller, seller_account, buyer_account
):
    """request_transfer 1, 59; a given note, trimmed: 56."""
    issue()
    plain = _transfer(seller, seller_account, buyer_account, quantity=25, key="t-1")
    assert _stored(plain) == {
        "kind": "transfer",
        "status": "pending",
        "from_account": seller_account.pk,
        "to_account": buyer_account.pk,
        "quantity": 25,
        "batch": None,
        "vintage": None,
        "price_per_tonne": Decimal("95.70"),
        "currency": "CNY",
        "beneficiary": "",
        "beneficiary_public": True,
        "purpose": "",
        "note": "",
        "reporting_year": None,
        "initiator": seller.pk,
        "idempotency_key": "t-1",
    }
    noted = _transfer(seller, seller_account, buyer_account, note="  Order 42 ")
    assert _stored(noted)["note"] == "Order 42"


def test_a_retirement_stores_its_beneficiary_purpose_and_year(
    issue, seller, seller_account, operator
):
    """request_retirement 1, 2, 32, 44, 45; a given note and privacy: 46."""
    issue()
    retirement = _retirement(
        seller,
        seller_account,
        quantity=40,
        beneficiary="  贵州绿筑建设集团有限公司 ",
        purpose="compliance",
        reporting_year=2027,
        key="r-1",
    )
    assert _stored(retirement) == {
        "kind": "retirement",
        "status": "pending",
        "from_account": seller_account.pk,
        "to_account": operator.accounts.get(kind=Account.Kind.RETIREMENT).pk,
        "quantity": 40,
        "batch": None,
        "vintage": None,
        "price_per_tonne": None,
        "currency": "CNY",
        "beneficiary": "贵州绿筑建设集团有限公司",
        "beneficiary_public": True,
        "purpose": "compliance",
        "note": "",
        "reporting_year": 2027,
        "initiator": seller.pk,
        "idempotency_key": "r-1",
    }
    private = _retirement(
        seller, seller_account, beneficiary_public=False, note=" For 2027 "
    )
    assert (_stored(private)["beneficiary_public"], _stored(private)["note"]) == (
        False,
        "For 2027",
    )


def test_a_request_limited_to_a_batch_or_vintage_stores_and_takes_only_it(
    issue, seller, seller_account, buyer_account, admin, operator
):
    """Transfer 43, 54; retirement 34, 35, 47, 48; cancellation 43, 44, 52, 53.
    The older batch comes first when nothing limits a request, so a limit that
    is dropped takes from it instead."""
    issue(quantity=100, buffer=0, vintage=2023)
    newer = issue(quantity=100, buffer=0, vintage=2025)
    made = {
        "transfer by batch": _transfer(
            seller, seller_account, buyer_account, quantity=5, batch=newer
        ),
        "transfer by vintage": _transfer(
            seller, seller_account, buyer_account, quantity=5, vintage=2025
        ),
        "retirement by batch": _retirement(seller, seller_account, 5, batch=newer),
        "retirement by vintage": _retirement(seller, seller_account, 5, vintage=2025),
        "cancellation by batch": _cancellation(admin, seller_account, 5, batch=newer),
        "cancellation by vintage": _cancellation(
            admin, seller_account, 5, vintage=2025
        ),
    }
    for name, request in made.items():
        stored = _stored(request)
        limit = (newer.pk, None) if name.endswith("batch") else (None, 2025)
        assert (stored["batch"], stored["vintage"]) == limit, name
        assert {block.batch_id for block in request.blocks.all()} == {newer.pk}, name


def test_the_reservation_is_journalled_as_the_initiators_act(
    issue, seller, seller_account, buyer_account
):
    """_create_request 59."""
    issue()
    request = _transfer(seller, seller_account, buyer_account, key="mine")
    reserve = LedgerEntry.objects.get(kind="reserve", trade_request=request)
    assert (reserve.actor_id, reserve.idempotency_key) == (seller.pk, "mine")


# The idempotency hash --------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_stored_hash_is_of_the_compact_sorted_utf8_json_body(
    issue, seller, seller_account, buyer_account, operator
):
    """Hashes are stored: a retry after a deploy meets the hash made before it,
    so the canonical form is fixed: keys sorted, no spaces, characters as they
    are (UTF-8), related rows by primary key, the currency included.
    _request_hash 5, 10, 11, 13-15; request_transfer 53; _create_request 19,
    21, 25, 26."""
    issue()
    transfer = _transfer(seller, seller_account, buyer_account, quantity=10)
    source, to = seller_account.pk, buyer_account.pk
    body = (
        f'{{"batch":null,"currency":"CNY","from_account":{source},"kind":"transfer",'
        f'"note":"","price_per_tonne":"95.70","quantity":10,"to_account":{to},'
        '"vintage":null}'
    )
    assert TradeRequest.objects.get(pk=transfer.pk).request_hash == _sha256(body)

    retirement = _retirement(seller, seller_account, quantity=40)
    to = operator.accounts.get(kind=Account.Kind.RETIREMENT).pk
    body = (
        '{"batch":null,"beneficiary":"贵州绿筑建设集团有限公司",'
        f'"beneficiary_public":true,"from_account":{source},"kind":"retirement",'
        '"note":"","purpose":"voluntary","quantity":40,"reporting_year":2026,'
        f'"to_account":{to},"vintage":null}}'
    )
    assert TradeRequest.objects.get(pk=retirement.pk).request_hash == _sha256(body)


def test_a_retry_in_another_language_gets_the_same_request(
    issue, seller, seller_account, buyer_account
):
    """Accounts enter the hash by primary key, not by their name, which is shown
    in the reader's language: _create_request 19, 21, 25, 26."""
    issue()
    with translation.override("zh-hans"):
        first = _transfer(seller, seller_account, buyer_account, key="order-9")
    with translation.override("en"):
        again = _transfer(seller, seller_account, buyer_account, key="order-9")
    assert again.pk == first.pk
    assert TradeRequest.objects.count() == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"quantity": 11},
        {"price": "95.71"},
        {"note": "another order"},
        {"vintage": 2025},
    ],
)
def test_each_input_of_a_request_counts_in_its_key(
    issue, seller, seller_account, buyer_account, changed
):
    issue()
    _transfer(seller, seller_account, buyer_account, quantity=10, key="order-3")
    refusal = _refused(
        ValidationError,
        lambda: _transfer(
            seller,
            seller_account,
            buyer_account,
            **{"quantity": 10, "key": "order-3", **changed},
        ),
    )
    assert refusal.code == "idempotency_conflict"
    assert TradeRequest.objects.count() == 1


def test_a_retry_meets_the_callers_own_key_even_if_another_used_it_later(
    issue, seller, seller_account, buyer, buyer_account, admin
):
    """Keys are per initiator: the buyer's retry finds the buyer's request,
    though the seller's request with the same key is newer. _existing_for_key 4."""
    issue(quantity=1000, buffer=0)
    delivery = _transfer(seller, seller_account, buyer_account, quantity=100)
    services.approve_request(actor=admin, request=delivery)
    buyers = _transfer(buyer, buyer_account, seller_account, quantity=5, key="po-1")
    sellers = _transfer(seller, seller_account, buyer_account, quantity=9, key="po-1")
    assert sellers.pk != buyers.pk
    again = _transfer(buyer, buyer_account, seller_account, quantity=5, key="po-1")
    assert again.pk == buyers.pk


# No round trips for what the database enforces ------------------------------------

# An existence probe of a related row, or a model check constraint evaluated
# by a query, as Model.full_clean would run them.
_RECHECK = re.compile(
    r'SELECT 1 AS "a" FROM "(registry_account|registry_creditbatch|registry_user)"'
    r'|AS "_check"'
)


def test_a_request_rechecks_nothing_the_database_enforces(
    issue, seller, seller_account, buyer_account
):
    """The accounts, batch and initiator exist, and the check constraints and
    the key's uniqueness hold at the insert: re-checking them would cost a round
    trip each. _create_request 42, 44, 45, 48-56."""
    batch = issue()
    with CaptureQueriesContext(connection) as queries:
        _transfer(seller, seller_account, buyer_account, batch=batch)
    assert [q["sql"] for q in queries if _RECHECK.search(q["sql"])] == []
