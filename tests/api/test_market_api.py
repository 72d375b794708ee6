"""The market through the API: listings and orders, their refusals' statuses
and codes, who may see and do what, idempotent replays, the public market's
filters, and a whole sale from listing to the buyer's certificate. Runs on
SQLite and, in the second stage, on PostgreSQL (the ledger functions)."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import IdempotencyRecord
from registry.models import Account
from tests.api.journey import API, ok
from tests.registry.projects import make_project, square
from trading import services
from trading.models import (
    Certificate,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller_account(owner_org):
    return owner_org.accounts.get(kind=Account.Kind.HOLDING)


@pytest.fixture
def buyer_account(buyer_org):
    return buyer_org.accounts.get(kind=Account.Kind.HOLDING)


@pytest.fixture
def other_account(other_org):
    return other_org.accounts.get(kind=Account.Kind.HOLDING)


@pytest.fixture
def project(staff, owner_org):
    return make_project(actor=staff, owner=owner_org)


def _issue(admin, project, account, *, vintage=2025, quantity=1000, buffer=100):
    return services.issue_batch(
        actor=admin,
        project=project,
        vintage=vintage,
        monitoring_start=date(vintage, 1, 1),
        monitoring_end=date(vintage, 12, 31),
        quantity=quantity,
        buffer_quantity=buffer,
        holder_account=account,
    )


@pytest.fixture
def batch(admin, project, seller_account):
    return _issue(admin, project, seller_account)  # 900 t to the seller


def _listing_body(account, batch, /, **extra):
    body = {
        "account": account.number,
        "batch": batch.pk,
        "quantity": 200,
        "price_per_tonne": "95",
        "minimum_lot": 10,
    }
    body.update(extra)
    return body


def _order_body(listing_id, account, /, **extra):
    body = {"listing": listing_id, "buyer_account": account.number, "quantity": 50}
    body.update(extra)
    return body


def _payment(order, **extra):
    body = {
        "amount": order["amount"],
        "paid_on": timezone.localdate().isoformat(),
        "reference": "ICBC-20261205-0042",
    }
    body.update(extra)
    return body


@pytest.fixture
def listing(api, staff, seller_account, batch):
    """200 t at 95.00 CNY, in lots of at least 10 t."""
    return ok(
        api(staff).post(f"{API}/listings/", _listing_body(seller_account, batch)), 201
    )


@pytest.fixture
def order(api, buyer, buyer_account, listing):
    """50 t of the listing, awaiting the seller's confirmation of the payment."""
    return ok(
        api(buyer).post(f"{API}/orders/", _order_body(listing["id"], buyer_account)),
        201,
    )


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    if field is not None:
        assert body["fields"][field][0]["code"] == code
    return body


# The whole sale --------------------------------------------------------------------


def test_list_order_pay_and_settle_with_retirement_on_delivery(
    api,
    staff,
    buyer,
    admin,
    second_admin,
    seller_account,
    buyer_account,
    batch,
):
    seller, purchaser, anyone = api(staff), api(buyer), api()

    # 200 t at 95 CNY per tonne, on the public market at once.
    listing = ok(
        seller.post(
            f"{API}/listings/",
            _listing_body(seller_account, batch, note="Spring offer."),
            HTTP_IDEMPOTENCY_KEY="sale-listing",
        ),
        201,
    )
    assert listing["number"] == f"L-{listing['id']:06d}"
    assert (
        listing["status"],
        listing["quantity_listed"],
        listing["quantity_left"],
    ) == (
        "open",
        200,
        200,
    )
    assert listing["price_per_tonne"] == "95.00"
    assert (listing["project"], listing["vintage"]) == (batch.project.code, 2025)
    assert (listing["county"], listing["ecosystem_focus"]) == ("520521", "forest")
    assert listing["seller_account"] == seller_account.number
    offers = ok(anyone.get(f"{API}/listings/"))
    assert [row["id"] for row in offers["results"]] == [listing["id"]]

    # The buyer orders 50 t, to be retired on delivery for a beneficiary.
    order = ok(
        purchaser.post(
            f"{API}/orders/",
            _order_body(
                listing["id"],
                buyer_account,
                retire_on_delivery=True,
                beneficiary="Buyer company",
                purpose="voluntary",
                reporting_year=2026,
            ),
            HTTP_IDEMPOTENCY_KEY="sale-order",
        ),
        201,
    )
    assert order["status"] == "awaiting_payment"
    assert (order["quantity"], order["price_per_tonne"], order["amount"]) == (
        50,
        "95.00",
        "4750.00",
    )
    assert (order["seller_account"], order["buyer_account"]) == (
        seller_account.number,
        buyer_account.number,
    )
    assert order["payment"] is None and order["certificate"] is None
    assert ok(anyone.get(f"{API}/listings/{listing['id']}/"))["quantity_left"] == 150

    # Too early for the review: the seller has not confirmed the payment.
    request_path = f"{API}/trade-requests/{order['trade_request']}"
    refused(api(admin).post(f"{request_path}/approve/"), 409, "awaiting_payment")

    # The seller confirms the payment; the order enters the review queue.
    paid = ok(
        seller.post(
            f"{API}/orders/{order['id']}/confirm-payment/",
            _payment(order),
            HTTP_IDEMPOTENCY_KEY="sale-payment",
        )
    )
    assert paid["status"] == "pending"
    assert paid["payment"] == {
        "amount": "4750.00",
        "paid_on": timezone.localdate().isoformat(),
        "reference": "ICBC-20261205-0042",
        "confirmed_by": staff.username,
        "confirmed_at": paid["payment"]["confirmed_at"],
    }

    # The reviewer sees the order and its payment beside the request.
    review = ok(api(second_admin).get(f"{request_path}/"))
    assert review["status"] == "pending"
    assert review["order"]["id"] == order["id"]
    assert review["order"]["listing"] == listing["id"]
    assert review["order"]["retire_on_delivery"] is True
    assert review["order"]["payment"]["reference"] == "ICBC-20261205-0042"
    assert review["order"]["payment"]["amount"] == "4750.00"

    # A second registry admin settles it through the review endpoint.
    settled = ok(api(second_admin).post(f"{request_path}/approve/"))
    assert settled["status"] == "settled"

    delivered = ok(purchaser.get(f"{API}/orders/{order['id']}/"))
    assert delivered["status"] == "settled"
    certificate = Certificate.objects.get(
        trade_request=Order.objects.get(pk=order["id"]).retirement_request
    )
    assert delivered["certificate"]["number"] == certificate.number
    assert delivered["certificate"]["verification_url"].endswith(
        f"/verify/{certificate.token}/"
    )
    public = ok(anyone.get(f"{API}/certificates/{certificate.number}/"))
    assert public["valid"] is True
    assert (public["quantity"], public["beneficiary"]) == (50, "Buyer company")
    assert public["reporting_year"] == 2026

    # The listing has 150 t left; the 50 t are retired.
    after = ok(anyone.get(f"{API}/listings/{listing['id']}/"))
    assert (after["status"], after["quantity_listed"], after["quantity_left"]) == (
        "open",
        200,
        150,
    )
    whereabouts = ok(anyone.get(f"{API}/batches/{batch.pk}/"))["whereabouts"]
    assert whereabouts == {
        "held": 700,
        "buffer": 100,
        "listed": 150,
        "reserved": 0,
        "retired": 50,
        "cancelled": 0,
    }
    assert verify_ledger(record=False).violations == []


def test_a_plain_transfer_shows_no_order_in_the_review(
    api, staff, seller_account, buyer_account, batch
):
    transfer = ok(
        api(staff).post(
            f"{API}/trade-requests/",
            {
                "kind": "transfer",
                "from_account": seller_account.number,
                "to_account": buyer_account.number,
                "quantity": 5,
                "price_per_tonne": "80",
            },
        ),
        201,
    )
    assert transfer["order"] is None


def test_declining_returns_the_credits_to_the_listing(
    api, staff, buyer, listing, order
):
    declined = ok(
        api(staff).post(
            f"{API}/orders/{order['id']}/decline/", {"reason": "No payment came."}
        )
    )
    assert declined["status"] == "declined"
    assert declined["decline_reason"] == "No payment came."
    assert declined["declined_at"]
    seen_by_buyer = ok(api(buyer).get(f"{API}/orders/{order['id']}/"))
    assert seen_by_buyer["decline_reason"] == "No payment came."
    assert ok(api().get(f"{API}/listings/{listing['id']}/"))["quantity_left"] == 200


def test_lowering_and_withdrawing_give_the_credits_back(
    api, staff, seller_account, listing
):
    seller = api(staff)
    lowered = ok(
        seller.post(f"{API}/listings/{listing['id']}/lower/", {"quantity_left": 120})
    )
    assert (lowered["quantity_listed"], lowered["quantity_left"]) == (200, 120)
    balance = ok(seller.get(f"{API}/accounts/{seller_account.pk}/"))["balance"]
    assert (balance["active"], balance["listed"]) == (780, 120)

    withdrawn = ok(seller.post(f"{API}/listings/{listing['id']}/withdraw/"))
    assert (withdrawn["status"], withdrawn["quantity_left"]) == ("withdrawn", 0)
    assert withdrawn["closed_at"]
    balance = ok(seller.get(f"{API}/accounts/{seller_account.pk}/"))["balance"]
    assert (balance["active"], balance["listed"]) == (900, 0)
    # Off the market, still there by its id.
    assert ok(api().get(f"{API}/listings/"))["results"] == []
    assert ok(api().get(f"{API}/listings/{listing['id']}/"))["status"] == "withdrawn"


def test_lowering_to_zero_withdraws(api, staff, listing):
    lowered = ok(
        api(staff).post(f"{API}/listings/{listing['id']}/lower/", {"quantity_left": 0})
    )
    assert (lowered["status"], lowered["quantity_left"]) == ("withdrawn", 0)


def test_a_seller_sees_its_own_listings_closed_ones_too(
    api, staff, other_staff, buyer, seller_account, batch, listing
):
    seller = api(staff)
    second = ok(
        seller.post(f"{API}/listings/", _listing_body(seller_account, batch)), 201
    )
    ok(seller.post(f"{API}/listings/{listing['id']}/withdraw/"))
    own = ok(seller.get(f"{API}/accounts/{seller_account.pk}/listings/"))
    # Open first, then the newest.
    assert [(row["id"], row["status"]) for row in own["results"]] == [
        (second["id"], "open"),
        (listing["id"], "withdrawn"),
    ]
    for outsider in (other_staff, buyer):
        response = api(outsider).get(f"{API}/accounts/{seller_account.pk}/listings/")
        refused(response, 404, "not_found")


def test_the_sellers_name_shows_only_where_its_account_is_public(
    api, owner_org, seller_account, listing
):
    shown = ok(api().get(f"{API}/listings/{listing['id']}/"))
    assert (shown["seller_name_zh"], shown["seller_name_en"]) == ("", "")
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    shown = ok(api().get(f"{API}/listings/{listing['id']}/"))
    assert shown["seller_name_en"] == owner_org.name_en
    assert shown["seller_name_zh"] == owner_org.name_zh


# Refusals: status and code -----------------------------------------------------------


def test_listing_refusals(api, staff, seller_account, other_account, batch):
    seller = api(staff)

    def create(**extra):
        return seller.post(
            f"{API}/listings/", _listing_body(seller_account, batch, **extra)
        )

    body = refused(create(quantity=901), 400, "insufficient_credits", "quantity")
    assert "900" in body["fields"]["quantity"][0]["message"]
    refused(
        create(quantity=10, minimum_lot=11), 400, "lot_above_quantity", "minimum_lot"
    )
    refused(create(price_per_tonne="0"), 400, "not_positive", "price_per_tonne")
    refused(create(price_per_tonne="95.705"), 400, "price_places", "price_per_tonne")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    refused(create(ends_on=yesterday), 400, "ends_in_past", "ends_on")
    refused(create(batch=10**9), 400, "does_not_exist", "batch")
    refused(create(account=other_account.number), 400, "does_not_exist", "account")
    assert not Listing.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.LIST).exists()


def test_a_listing_refuses_changes_once_closed_and_lowering_must_lower(
    api, staff, listing
):
    seller = api(staff)
    path = f"{API}/listings/{listing['id']}"
    refused(
        seller.post(f"{path}/lower/", {"quantity_left": 200}),
        400,
        "not_lower",
        "quantity_left",
    )
    ok(seller.post(f"{path}/withdraw/"))
    refused(seller.post(f"{path}/withdraw/"), 409, "listing_closed")
    refused(seller.post(f"{path}/lower/", {"quantity_left": 5}), 409, "listing_closed")


def test_order_refusals(api, staff, buyer, seller_account, buyer_account, listing):
    purchaser = api(buyer)

    def place(**extra):
        return purchaser.post(
            f"{API}/orders/", _order_body(listing["id"], buyer_account, **extra)
        )

    refused(place(quantity=5), 400, "below_minimum_lot", "quantity")
    refused(place(quantity=201), 409, "not_enough_left", "quantity")
    refused(place(retire_on_delivery=True), 400, "required", "beneficiary")
    refused(
        place(retire_on_delivery=True, beneficiary="Buyer company"),
        400,
        "invalid_choice",
        "purpose",
    )
    refused(place(listing=10**9), 400, "does_not_exist", "listing")
    # The seller's own organization cannot buy from it.
    own = api(staff).post(f"{API}/orders/", _order_body(listing["id"], seller_account))
    refused(own, 403, "own_listing")
    assert not Order.objects.exists()

    # All that is left may be ordered below the minimum lot; then it is sold out.
    ok(api(staff).post(f"{API}/listings/{listing['id']}/lower/", {"quantity_left": 15}))
    ok(place(quantity=15), 201)
    refused(place(quantity=10), 409, "sold_out")

    ok(api(staff).post(f"{API}/listings/{listing['id']}/withdraw/"))
    refused(place(quantity=10), 409, "listing_closed")


def test_payment_and_review_refusals(api, staff, admin, second_admin, order):
    seller = api(staff)
    path = f"{API}/orders/{order['id']}"
    refused(
        seller.post(f"{path}/confirm-payment/", _payment(order, amount="4749.99")),
        400,
        "amount_mismatch",
        "amount",
    )
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    refused(
        seller.post(f"{path}/confirm-payment/", _payment(order, paid_on=tomorrow)),
        400,
        "date_out_of_range",
        "paid_on",
    )
    refused(
        seller.post(f"{path}/confirm-payment/", _payment(order, amount="0")),
        400,
        "not_positive",
        "amount",
    )
    refused(
        seller.post(f"{path}/confirm-payment/", _payment(order, reference="   ")),
        400,
        "blank",
        "reference",
    )
    refused(seller.post(f"{path}/decline/", {"reason": "  "}), 400, "blank", "reason")

    request_path = f"{API}/trade-requests/{order['trade_request']}"
    refused(api(admin).post(f"{request_path}/approve/"), 409, "awaiting_payment")
    rejected_early = api(admin).post(f"{request_path}/reject/", {"reason": "Early."})
    assert rejected_early.status_code == 409
    assert TradeRequest.objects.get(pk=order["trade_request"]).status == (
        TradeRequest.Status.AWAITING_PAYMENT
    )

    ok(seller.post(f"{path}/confirm-payment/", _payment(order)))
    # The same confirmation again changes nothing; a decline is too late.
    again = ok(seller.post(f"{path}/confirm-payment/", _payment(order)))
    assert again["status"] == "pending"
    refused(
        seller.post(f"{path}/decline/", {"reason": "Changed my mind."}),
        409,
        "not_awaiting_payment",
    )
    refused(
        seller.post(
            f"{path}/confirm-payment/", _payment(order, reference="ICBC-other")
        ),
        409,
        "not_awaiting_payment",
    )
    rejected = ok(
        api(second_admin).post(
            f"{request_path}/reject/", {"reason": "Payment record unclear."}
        )
    )
    assert rejected["status"] == "rejected"
    assert ok(seller.get(path + "/"))["status"] == "rejected"


# Who may see and do what ------------------------------------------------------------


def test_another_organization_neither_sees_nor_acts_on_an_order(
    api, other_staff, make_user, other_org, order
):
    from registry.roles import Role

    other_buyer = make_user(role=Role.BUYER, organization=other_org)
    before = list(
        Order.objects.values_list("pk", "payment_confirmed_at", "declined_at")
    )
    for user in (other_staff, other_buyer):
        client = api(user)
        path = f"{API}/orders/{order['id']}"
        refused(client.get(path + "/"), 404, "not_found")
        assert ok(client.get(f"{API}/orders/"))["results"] == []
        refused(
            client.post(f"{path}/confirm-payment/", _payment(order)), 404, "not_found"
        )
        refused(client.post(f"{path}/decline/", {"reason": "x"}), 404, "not_found")
        refused(
            client.get(f"{API}/trade-requests/{order['trade_request']}/"),
            404,
            "not_found",
        )
    after = list(Order.objects.values_list("pk", "payment_confirmed_at", "declined_at"))
    assert after == before


def test_only_the_sellers_organization_confirms_or_declines(
    api, staff, buyer, admin, make_user, owner_org, order
):
    from registry.roles import Role

    path = f"{API}/orders/{order['id']}"
    # The buyer and a registry admin see the order but cannot act as seller.
    for user in (buyer, admin):
        client = api(user)
        assert ok(client.get(path + "/"))["id"] == order["id"]
        refused(
            client.post(f"{path}/confirm-payment/", _payment(order)),
            403,
            "permission_denied",
        )
        refused(
            client.post(f"{path}/decline/", {"reason": "x"}), 403, "permission_denied"
        )
    assert ok(api(staff).get(f"{API}/orders/"))["results"][0]["id"] == order["id"]
    assert ok(api(buyer).get(f"{API}/orders/"))["results"][0]["id"] == order["id"]
    assert ok(api(admin).get(f"{API}/orders/"))["count"] == 1
    # Any colleague of the seller's organization may confirm.
    colleague = make_user(role=Role.BUREAU_STAFF, organization=owner_org)
    paid = ok(api(colleague).post(f"{path}/confirm-payment/", _payment(order)))
    assert paid["payment"]["confirmed_by"] == colleague.username


def test_another_organization_cannot_lower_or_withdraw_a_listing(
    api, other_staff, buyer, listing
):
    path = f"{API}/listings/{listing['id']}"
    for user in (other_staff, buyer):
        client = api(user)
        refused(
            client.post(f"{path}/lower/", {"quantity_left": 1}),
            403,
            "permission_denied",
        )
        refused(client.post(f"{path}/withdraw/"), 403, "permission_denied")
    anonymous = api()
    refused(anonymous.post(f"{path}/withdraw/"), 401, "not_authenticated")
    refused(
        anonymous.post(f"{path}/lower/", {"quantity_left": 1}), 401, "not_authenticated"
    )
    shown = ok(anonymous.get(path + "/"))
    assert (shown["status"], shown["quantity_left"]) == ("open", 200)


def test_signing_in_is_needed_to_list_or_order(api, listing, seller_account, batch):
    anonymous = api()
    refused(
        anonymous.post(f"{API}/listings/", _listing_body(seller_account, batch)),
        401,
        "not_authenticated",
    )
    refused(
        anonymous.post(f"{API}/orders/", _order_body(listing["id"], seller_account)),
        401,
        "not_authenticated",
    )
    refused(anonymous.get(f"{API}/orders/"), 401, "not_authenticated")


# Idempotency --------------------------------------------------------------------------


def test_a_listing_key_acts_once(api, staff, seller_account, batch):
    seller = api(staff)
    body = _listing_body(seller_account, batch)
    first = seller.post(f"{API}/listings/", body, HTTP_IDEMPOTENCY_KEY="list-1")
    again = seller.post(f"{API}/listings/", body, HTTP_IDEMPOTENCY_KEY="list-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Listing.objects.get().idempotency_key == "list-1"
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.LIST).count() == 1

    other = seller.post(
        f"{API}/listings/",
        _listing_body(seller_account, batch, quantity=100),
        HTTP_IDEMPOTENCY_KEY="list-1",
    )
    refused(other, 409, "idempotency_conflict")
    assert Listing.objects.count() == 1


def test_an_order_key_acts_once(api, buyer, buyer_account, listing):
    purchaser = api(buyer)
    body = _order_body(listing["id"], buyer_account)
    first = ok(purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-1"), 201)
    again = purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-1")
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert TradeRequest.objects.get().idempotency_key == "o-1"
    assert ok(api().get(f"{API}/listings/{listing['id']}/"))["quantity_left"] == 150

    body["quantity"] = 60
    refused(
        purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-1"),
        409,
        "idempotency_conflict",
    )
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.filter(key="o-1").count() == 1


def test_an_order_key_acts_once_even_when_the_answer_was_lost(
    api, buyer, buyer_account, listing
):
    """The service keeps the key too: a repeat whose first answer was never
    stored (the record lost) finds the same order, and another body with
    that key is still refused."""
    purchaser = api(buyer)
    body = _order_body(listing["id"], buyer_account)
    first = ok(purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-2"), 201)
    IdempotencyRecord.objects.filter(key="o-2").delete()
    again = ok(purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-2"), 201)
    assert again["id"] == first["id"]
    IdempotencyRecord.objects.filter(key="o-2").delete()
    body["quantity"] = 60
    refused(
        purchaser.post(f"{API}/orders/", body, HTTP_IDEMPOTENCY_KEY="o-2"),
        409,
        "idempotency_conflict",
    )
    assert Order.objects.count() == 1


def test_a_payment_confirmation_key_acts_once(api, staff, order):
    seller = api(staff)
    path = f"{API}/orders/{order['id']}/confirm-payment/"
    first = ok(seller.post(path, _payment(order), HTTP_IDEMPOTENCY_KEY="pay-1"))
    again = seller.post(path, _payment(order), HTTP_IDEMPOTENCY_KEY="pay-1")
    assert again.status_code == 200
    assert again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    refused(
        seller.post(
            path, _payment(order, reference="ICBC-2"), HTTP_IDEMPOTENCY_KEY="pay-1"
        ),
        409,
        "idempotency_conflict",
    )
    assert Order.objects.get().payment_reference == "ICBC-20261205-0042"


# The public market: filters and sort orders ------------------------------------------


@pytest.fixture
def market(api, staff, admin, owner_org, seller_account, project):
    """Three open listings and a closed one: forest 2025 at 95 and 80.50,
    forest 2024 at 120, and a wetland project's 2025 credits, withdrawn."""
    seller = api(staff)
    wetland = make_project(
        actor=staff,
        owner=owner_org,
        geometry=square(105.63, 27.16, 300),
        ecosystem_focus="wetland",
        name_en="Wetland",
    )
    batches = {
        "2025": _issue(admin, project, seller_account),
        "2024": _issue(admin, project, seller_account, vintage=2024),
        "wetland": _issue(admin, wetland, seller_account),
    }

    def put(batch, price, quantity=100):
        return ok(
            seller.post(
                f"{API}/listings/",
                _listing_body(
                    seller_account,
                    batches[batch],
                    quantity=quantity,
                    price_per_tonne=price,
                    minimum_lot=1,
                ),
            ),
            201,
        )["id"]

    listings = {
        "95": put("2025", "95"),
        "80": put("2025", "80.50"),
        "120": put("2024", "120"),
        "wetland": put("wetland", "60"),
    }
    ok(
        seller.post(
            f"{API}/listings/{listings['wetland']}/lower/", {"quantity_left": 0}
        )
    )
    return listings


def _ids(api, market, **query):
    body = ok(api().get(f"{API}/listings/", query))
    names = {pk: name for name, pk in market.items()}
    return [names[row["id"]] for row in body["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["80", "95", "120"]),
        ({"ordering": "price"}, ["80", "95", "120"]),
        ({"ordering": "-price"}, ["120", "95", "80"]),
        ({"ordering": "vintage"}, ["120", "80", "95"]),
        ({"ordering": "-vintage"}, ["80", "95", "120"]),
        ({"vintage": "2024"}, ["120"]),
        ({"price_min": "90"}, ["95", "120"]),
        ({"price_max": "95.00"}, ["80", "95"]),
        ({"price_min": "80.5", "price_max": "95"}, ["80", "95"]),
        ({"county": "520521"}, ["80", "95", "120"]),
        ({"county": "520502"}, []),
        ({"county": "999999"}, []),
        ({"ecosystem": "forest"}, ["80", "95", "120"]),
        ({"ecosystem": "wetland"}, []),
    ],
)
def test_the_market_filters_and_sorts(api, market, query, expected):
    assert _ids(api, market, **query) == expected


def test_the_market_lists_only_open_listings(api, market):
    closed = ok(api().get(f"{API}/listings/{market['wetland']}/"))
    assert (closed["status"], closed["quantity_left"]) == ("withdrawn", 0)
    assert "wetland" not in _ids(api, market)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"price_min": "abc"}, "not_a_number"),
        ({"price_max": "95.705"}, "price_places"),
        ({"price_min": ""}, "not_a_number"),
        ({"ordering": "cheapest"}, "invalid_choice"),
        ({"ecosystem": "desert"}, "invalid_choice"),
        ({"vintage": "1999"}, "min_value"),
        ({"vintage": ["2024", "2025"]}, "repeated_parameter"),
        ({"county": ""}, "blank"),
        ({"county": "52052x"}, "invalid"),
        ({"county": " 520521"}, "invalid"),
    ],
)
def test_market_filters_are_read_strictly(api, db, query, code):
    response = api().get(f"{API}/listings/", query)
    refused(response, 400, code, next(iter(query)))


def test_the_market_is_paginated(api, market):
    body = ok(api().get(f"{API}/listings/", {"page_size": 2}))
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "page=2" in body["next"]


def test_unknown_and_malformed_ids_are_json_404s(api, buyer):
    for path in ("/listings/999999/", "/listings/abc/", "/orders/999999/"):
        refused(api(buyer).get(API + path), 404, "not_found")
    refused(api(buyer).post(f"{API}/listings/999999/withdraw/"), 404, "not_found")


def test_lists_cost_the_same_queries_for_one_row_as_for_many(
    api, staff, buyer, admin, seller_account, buyer_account, batch, listing
):
    def queries():
        counts = {}
        for user, path in [
            (None, "/listings/"),
            (staff, f"/accounts/{seller_account.pk}/listings/"),
            (buyer, "/orders/"),
            (admin, "/orders/"),
            (admin, "/trade-requests/"),
        ]:
            client = api(user)
            with CaptureQueriesContext(connection) as captured:
                ok(client.get(API + path))
            counts[(user and user.username, path)] = len(captured.captured_queries)
        return counts

    ok(
        api(buyer).post(f"{API}/orders/", _order_body(listing["id"], buyer_account)),
        201,
    )
    one = queries()
    for _ in range(2):
        body = _listing_body(seller_account, batch, quantity=10, minimum_lot=1)
        ok(api(staff).post(f"{API}/listings/", body), 201)
        body = _order_body(listing["id"], buyer_account, quantity=10)
        ok(api(buyer).post(f"{API}/orders/", body), 201)
    assert queries() == one
