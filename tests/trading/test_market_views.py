"""The market's signed-in pages: sellers list, lower and withdraw; buyers
order; sellers confirm or decline payments; reviewers see the order beside
the request. Each page's permissions are per object."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from registry import services as registry_services
from registry.models import Organization
from registry.roles import Role
from registry.uscc import check_character
from tests.trading.conftest import new_key
from tests.trading.conftest import order_from as _order
from trading.models import Listing, Order, TradeRequest
from trading.selectors import get_account_balance

_orgs = iter(range(10, 99))


def _other_buyer(make_user):
    base = f"91520100MA6H3Q{next(_orgs):02d}X"
    organization = registry_services.create_organization(
        name_zh="另一买方",
        name_en="Another buyer",
        kind=Organization.Kind.BUYER,
        uscc=base + check_character(base),
    )
    return make_user(role=Role.BUYER, organization=organization), organization


def test_a_seller_lists_credits_through_the_form(client, seller, seller_account, batch):
    client.force_login(seller)
    page = client.get(reverse("trading:listing-create"), {"batch": batch.pk})
    assert page.status_code == 200
    assert batch.serial_label in page.content.decode()
    form = page.context["form"]
    response = client.post(
        reverse("trading:listing-create"),
        {
            "account": seller_account.pk,
            "batch": batch.pk,
            "quantity": "200",
            "price_per_tonne": "95",
            "minimum_lot": "10",
            "ends_on": "",
            "note": "2025 年度森林碳汇",
            "idempotency_key": form.initial["idempotency_key"],
        },
    )
    assert response.status_code == 302
    listing = Listing.objects.get()
    assert (listing.quantity_left, listing.note) == (200, "2025 年度森林碳汇")
    assert get_account_balance(account=seller_account)["listed"] == 200


def test_a_bad_listing_form_says_why_and_lists_nothing(
    client, seller, seller_account, batch
):
    client.force_login(seller)
    response = client.post(
        reverse("trading:listing-create"),
        {
            "account": seller_account.pk,
            "batch": batch.pk,
            "quantity": "5000",
            "price_per_tonne": "95",
            "minimum_lot": "10",
            "idempotency_key": new_key(),
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["quantity"]
    assert any("900" in error for error in errors)
    assert not Listing.objects.exists()


def test_the_batch_list_offers_only_the_sellers_own_active_batches(
    client, seller, buyer, batch, issue, buyer_account
):
    foreign = issue(quantity=50, buffer=0, vintage=2024, holder=buyer_account)
    client.force_login(seller)
    choices = client.get(reverse("trading:listing-create")).context["form"]
    batches = set(choices.fields["batch"].queryset)
    assert batches == {batch}
    assert foreign not in batches


def test_the_desk_lowers_and_withdraws_own_listings_only(
    client, seller, listing, make_user
):
    client.force_login(seller)
    response = client.post(
        reverse("trading:listing-lower", args=[listing.pk]), {"quantity_left": "120"}
    )
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.quantity_left == 120

    stranger, _org = _other_buyer(make_user)
    client.force_login(stranger)
    for name, data in (
        ("trading:listing-lower", {"quantity_left": "1"}),
        ("trading:listing-withdraw", {}),
    ):
        assert client.post(reverse(name, args=[listing.pk]), data).status_code == 404
    listing.refresh_from_db()
    assert (listing.status, listing.quantity_left) == ("open", 120)

    client.force_login(seller)
    client.post(reverse("trading:listing-withdraw", args=[listing.pk]))
    listing.refresh_from_db()
    assert listing.status == "withdrawn"


def test_lowering_to_more_than_is_left_shows_the_reason(client, seller, listing):
    client.force_login(seller)
    response = client.post(
        reverse("trading:listing-lower", args=[listing.pk]),
        {"quantity_left": "300"},
        follow=True,
    )
    assert "200" in response.content.decode()
    listing.refresh_from_db()
    assert listing.quantity_left == 200


def test_a_buyer_orders_with_retirement_on_delivery_through_the_form(
    client, buyer, buyer_account, listing
):
    client.force_login(buyer)
    page = client.get(reverse("trading:order-create", args=[listing.pk]))
    assert page.status_code == 200
    response = client.post(
        reverse("trading:order-create", args=[listing.pk]),
        {
            "buyer_account": buyer_account.pk,
            "quantity": "50",
            "retire_on_delivery": "on",
            "beneficiary": "毕节市生态文化旅游节",
            "beneficiary_public": "on",
            "purpose": "event",
            "reporting_year": "2026",
            "idempotency_key": page.context["form"].initial["idempotency_key"],
        },
    )
    order = Order.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("trading:order-detail", args=[order.pk])
    assert order.retire_on_delivery and order.beneficiary == "毕节市生态文化旅游节"
    listing.refresh_from_db()
    assert listing.quantity_left == 150


def test_an_order_below_the_lot_is_refused_on_the_form(
    client, buyer, buyer_account, listing
):
    client.force_login(buyer)
    response = client.post(
        reverse("trading:order-create", args=[listing.pk]),
        {"buyer_account": buyer_account.pk, "quantity": "5", "idempotency_key": "k"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["quantity"]
    assert not Order.objects.exists()


def test_the_seller_confirms_the_payment_and_the_reviewer_sees_it(
    client, seller, buyer, buyer_account, listing, admin
):
    order = _order(buyer, buyer_account, listing)
    client.force_login(seller)
    page = client.get(reverse("trading:order-detail", args=[order.pk]))
    assert page.context["payment_form"] is not None
    client.post(
        reverse("trading:order-confirm-payment", args=[order.pk]),
        {
            "amount": "4750.00",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "ABC-BANK-7788",
        },
    )
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.PENDING

    client.force_login(admin)
    queue = client.get(reverse("trading:review-queue")).content.decode()
    assert f'data-order="{order.pk}"' in queue
    assert "ABC-BANK-7788" in queue
    assert listing.number in queue


def test_a_wrong_amount_is_refused_with_the_amount_due(
    client, seller, buyer, buyer_account, listing
):
    order = _order(buyer, buyer_account, listing)
    client.force_login(seller)
    response = client.post(
        reverse("trading:order-confirm-payment", args=[order.pk]),
        {
            "amount": "4000",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "X",
        },
        follow=True,
    )
    assert "4,750.00" in response.content.decode()
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT


def test_the_seller_declines_and_the_credits_return(
    client, seller, buyer, buyer_account, listing
):
    order = _order(buyer, buyer_account, listing)
    client.force_login(seller)
    client.post(reverse("trading:order-decline", args=[order.pk]), {"reason": "未付款"})
    order.refresh_from_db()
    listing.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.DECLINED
    assert listing.quantity_left == 200


def test_the_buyer_sees_the_order_but_cannot_confirm_or_decline_it(
    client, buyer, buyer_account, listing
):
    order = _order(buyer, buyer_account, listing)
    client.force_login(buyer)
    page = client.get(reverse("trading:order-detail", args=[order.pk]))
    assert page.status_code == 200
    assert page.context["payment_form"] is None
    response = client.post(
        reverse("trading:order-confirm-payment", args=[order.pk]),
        {
            "amount": "4750.00",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "X",
        },
    )
    assert response.status_code == 403
    assert (
        client.post(
            reverse("trading:order-decline", args=[order.pk]), {"reason": "x"}
        ).status_code
        == 403
    )
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT


def test_another_organization_cannot_see_or_touch_an_order(
    client, buyer, buyer_account, listing, make_user
):
    order = _order(buyer, buyer_account, listing)
    stranger, _org = _other_buyer(make_user)
    client.force_login(stranger)
    assert (
        client.get(reverse("trading:order-detail", args=[order.pk])).status_code == 404
    )
    assert (
        client.post(
            reverse("trading:order-decline", args=[order.pk]), {"reason": "x"}
        ).status_code
        == 404
    )
    assert (
        order.number not in client.get(reverse("trading:market-desk")).content.decode()
    )


def test_the_seller_sees_a_private_beneficiary_as_not_named(
    client, seller, buyer, buyer_account, listing
):
    order = _order(
        buyer,
        buyer_account,
        listing,
        retire_on_delivery=True,
        beneficiary="某私人企业",
        beneficiary_public=False,
        purpose="voluntary",
    )
    client.force_login(seller)
    assert (
        "某私人企业"
        not in client.get(
            reverse("trading:order-detail", args=[order.pk])
        ).content.decode()
    )
    client.force_login(buyer)
    assert (
        "某私人企业"
        in client.get(reverse("trading:order-detail", args=[order.pk])).content.decode()
    )


def test_an_expired_order_page_shows_its_history(client, buyer, buyer_account, listing):
    from trading import services

    order = _order(buyer, buyer_account, listing)
    services.expire_stale_requests(now=timezone.now() + timedelta(days=8))
    client.force_login(buyer)
    page = client.get(reverse("trading:order-detail", args=[order.pk]))
    assert 'data-order-status="expired"' in page.content.decode()


def test_the_desk_costs_the_same_queries_for_1_or_20_orders(
    client, seller, listing, make_user
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def place(count):
        for _ in range(count):
            buyer, organization = _other_buyer(make_user)
            _order(
                buyer, organization.accounts.get(kind="holding"), listing, quantity=10
            )

    def desk_queries(expected_orders) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("trading:market-desk"))
        assert len(response.context["received"]) == expected_orders
        return len(captured)

    client.force_login(seller)
    place(1)
    one = desk_queries(1)
    place(19)
    assert desk_queries(20) == one
