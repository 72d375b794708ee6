"""The bilingual shell in a real browser."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_home_page_is_chinese_for_a_chinese_browser_and_switches_to_english(
    page_factory, screenshot
):
    page = page_factory(locale="zh-CN")
    page.goto("/")
    assert page.locator("h1").inner_text() == "毕节市碳汇登记簿"
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    screenshot(page, "home-zh")

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Bijie carbon-sink registry"
    assert page.get_by_role("heading", name="How the registry works").is_visible()
    screenshot(page, "home-en")


def test_a_demo_user_logs_in_sees_their_organization_and_logs_out(page_factory):
    call_command("load_bijie_demo")
    page = page_factory(locale="en-US")
    page.goto("/")
    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Username").fill("bureau_demo")
    page.get_by_label("Password").fill("bijie-demo")
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    assert page.get_by_text("Bijie Forestry Bureau").is_visible()
    assert page.get_by_role("link", name="My account").is_visible()
    assert page.get_by_role("link", name="Administration").count() == 0

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert page.get_by_role("link", name="Log in").first.is_visible()


def test_pages_fit_a_phone_screen(page_factory, screenshot):
    page = page_factory(locale="zh-CN", width=390, height=844)
    page.goto("/")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    screenshot(page, "home-zh-phone")
