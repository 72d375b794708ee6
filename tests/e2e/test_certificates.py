"""The demo's retirement certificate as a buyer and a stranger see it: the
buyer's dashboard, the public certificate and verification pages on a desktop
and a 390 px phone, and the statistics charts."""

import pytest
from django.core.management import call_command

from tests.e2e.conftest import log_in
from trading.models import Certificate

pytestmark = pytest.mark.django_db(transaction=True)

BENEFICIARY = "贵州绿筑建设集团有限公司"


def test_a_buyer_finds_the_certificate_and_a_stranger_verifies_it(
    page_factory, screenshot
):
    call_command("load_bijie_demo")
    certificate = Certificate.objects.get()

    buyer = page_factory(locale="zh-CN")
    log_in(buyer, "buyer_demo")
    buyer.get_by_role("link", name="我的碳信用").click()
    assert certificate.number in buyer.locator("table.certificates").inner_text()
    screenshot(buyer, "dashboard-zh")
    buyer.get_by_role("link", name=certificate.number).click()
    buyer.wait_for_selector(".certificate")
    assert BENEFICIARY in buyer.locator(".beneficiary").inner_text()
    screenshot(buyer, "certificate-zh")

    phone = page_factory(locale="zh-CN", width=390, height=844)
    phone.goto(f"/certificates/{certificate.token}/")
    assert BENEFICIARY in phone.locator(".beneficiary").inner_text()
    # Nothing wider than the phone's screen: no sideways scrolling.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "certificate-zh-phone")
    phone.get_by_role("link", name="验证此证书").click()
    phone.wait_for_selector("[data-valid]")
    assert phone.locator("[data-valid]").get_attribute("data-valid") == "true"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "verify-zh-phone")

    stranger = page_factory(locale="en-US")
    stranger.goto(f"/verify/{certificate.token}/")
    assert "This certificate is valid" in stranger.locator(".verdict").inner_text()
    screenshot(stranger, "verify-en")
    stranger.goto(f"/certificates/{certificate.token}/")
    screenshot(stranger, "certificate-en")

    english_phone = page_factory(locale="en-US", width=390, height=844)
    english_phone.goto(f"/certificates/{certificate.token}/")
    assert english_phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(english_phone, "certificate-en-phone")
    english_phone.goto("/verify/AAAAAAAAAAAAAAAAAAAAAA/")
    assert "does not exist" in english_phone.locator("main").inner_text()


def test_the_public_registry_from_the_home_page(page_factory, screenshot):
    call_command("load_bijie_demo")
    page = page_factory(locale="en-US")
    page.goto("/")
    page.locator("main").get_by_role("link", name="Public registry").click()
    page.get_by_role("link", name="Statistics").first.click()
    page.wait_for_function(
        "document.querySelectorAll('canvas[data-chart]').length > 0 && "
        "[...document.querySelectorAll('canvas[data-chart]')]"
        ".some(c => !c.hidden && c.width > 0)"
    )
    assert "Forest" in page.locator("main").inner_text()
    screenshot(page, "public-statistics-en")
    page.get_by_role("link", name="Retirements").first.click()
    assert BENEFICIARY in page.locator("table.retirements").inner_text()
    screenshot(page, "public-retirements-en")
