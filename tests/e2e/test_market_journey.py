"""A sale on the market, walked in a real browser by its four people: the
village collective lists 200 t at 95 CNY; a company orders 50 t retired on
delivery for a Chinese beneficiary; the collective confirms the payment; a
registry admin settles; the certificate verifies; the market shows 150 t
left and the sale in its price chart."""

from datetime import date

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry.models import Project, User
from tests.e2e.conftest import log_in
from trading import services
from trading.models import Certificate, Listing, Order, TradeRequest
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db(transaction=True)

BENEFICIARY = "贵州省毕节市2026年生态文化旅游节组委会"


def _issue_to_the_village() -> Project:
    project = Project.objects.get(name_en__startswith="Xinchun")
    services.issue_batch(
        actor=User.objects.get(username="registry_admin_demo"),
        project=project,
        vintage=2026,
        monitoring_start=date(2026, 1, 1),
        monitoring_end=date(2026, 6, 30),
        quantity=600,
        buffer_quantity=60,
        holder_account=project.owner.accounts.get(kind="holding"),
    )
    return project


def test_a_village_sells_and_a_company_retires_on_delivery(page_factory, screenshot):
    call_command("load_bijie_demo")
    project = _issue_to_the_village()

    # The village collective lists 200 t at 95 CNY (in Chinese).
    village = page_factory(locale="zh-CN")
    log_in(village, "village_demo")
    village.get_by_role("link", name="我的交易").click()
    village.locator("a[href$='/ledger/market/sell/']").first.click()
    batch = project.batches.get(vintage=2026)
    village.locator("#id_batch").select_option(str(batch.pk))
    village.locator("#id_quantity").fill("200")
    village.locator("#id_price_per_tonne").fill("95")
    village.locator("#id_minimum_lot").fill("10")
    village.locator("#id_note").fill("新春村集体林 2026 年上半年碳汇。")
    screenshot(village, "market-sell-zh")
    village.locator("form.narrow-form button[type=submit]").click()
    village.wait_for_selector(".messages")
    listing = Listing.objects.get(batch=batch)
    assert listing.quantity_left == 200
    assert listing.number in village.locator(".messages").inner_text()

    # A company finds it on the public market and orders 50 t, retired on
    # delivery for a Chinese beneficiary.
    buyer = page_factory(locale="en-US")
    log_in(buyer, "buyer_demo")
    buyer.get_by_role("link", name="Market", exact=True).click()
    buyer.locator(f"a[href$='/market/listings/{listing.pk}/']").first.click()
    buyer.locator(f"a[href$='/ledger/market/listings/{listing.pk}/order/']").click()
    buyer.locator("#id_quantity").fill("50")
    buyer.locator("#id_retire_on_delivery").check()
    buyer.locator("#id_beneficiary").fill(BENEFICIARY)
    buyer.locator("#id_purpose").select_option("event")
    buyer.locator("#id_reporting_year").fill("2026")
    buyer.locator("form.narrow-form button[type=submit]").click()
    buyer.wait_for_selector("[data-order-status='awaiting_payment']")
    assert "4,750.00" in buyer.locator(".messages").inner_text()
    assert "4750.00" in buyer.locator("[data-amount]").inner_text()
    screenshot(buyer, "market-order-en")
    order = Order.objects.get(listing=listing)

    # The collective confirms the money arrived.
    village.goto("/ledger/market/")
    village.locator(f"a[href$='/ledger/market/orders/{order.pk}/']").first.click()
    assert village.locator("#id_amount").input_value() == "4750.00"
    village.locator("#id_paid_on").fill(timezone.localdate().isoformat())
    village.locator("#id_reference").fill("农商行 20261205-0093")
    screenshot(village, "market-confirm-payment-zh")
    village.locator(
        f"form[action$='/ledger/market/orders/{order.pk}/confirm-payment/'] "
        "button[type=submit]"
    ).click()
    village.wait_for_selector("[data-order-status='pending']")
    assert "农商行 20261205-0093" in village.locator("[data-payment]").inner_text()

    # A registry admin sees the listing, the order and the payment side by
    # side, and settles.
    admin = page_factory(locale="zh-CN")
    log_in(admin, "registry_admin_demo")
    admin.get_by_role("link", name="审核队列").click()
    order_facts = admin.locator(f"[data-order='{order.pk}']")
    item = admin.locator(".review-item", has=order_facts)
    assert "农商行 20261205-0093" in item.inner_text()
    assert listing.number in item.inner_text()
    screenshot(admin, "market-review-zh")
    item.get_by_role("button", name="批准并结算").click()
    admin.wait_for_selector(".messages")
    assert "已结算" in admin.locator(".messages").inner_text()

    # The buyer's order is settled with its certificate, which verifies.
    order.refresh_from_db()
    assert order.trade_request.status == TradeRequest.Status.SETTLED
    certificate = Certificate.objects.get(trade_request=order.retirement_request)
    buyer.reload()
    assert buyer.locator("[data-order-status='settled']").count() == 1
    buyer.get_by_role("link", name=f"Certificate {certificate.number}").click()
    assert BENEFICIARY in buyer.locator("main").inner_text()
    buyer.goto(f"/verify/{certificate.token}/")
    assert "50" in buyer.locator("main").inner_text()
    assert certificate.number in buyer.locator("main").inner_text()

    # The market shows 150 t left and this month's sale in the chart's table.
    buyer.goto("/market/")
    row = buyer.locator(f"[data-listing='{listing.pk}']").first
    assert "150" in row.inner_text()
    # This month: the demo's 200 t at 95.70 and this sale's 50 t at 95.00,
    # weighted by the tonnes: (200 x 95.70 + 50 x 95.00) / 250 = 95.56.
    month = timezone.localdate().strftime("%Y-%m")
    cells = buyer.locator("table.compact tbody tr", has_text=month).locator("td")
    assert [cells.nth(i).inner_text() for i in range(3)] == [month, "250", "95.56"]
    assert buyer.locator("[data-best-price]").inner_text() == "95.00"
    assert buyer.locator("[data-best-quantity]").inner_text().startswith("150")
    buyer.wait_for_function(
        "() => !!Chart.getChart("
        "document.querySelector(\"canvas[data-chart='market']\"))"
    )
    screenshot(buyer, "market-after-sale-en")
    assert verify_ledger(record=False).violations == []
