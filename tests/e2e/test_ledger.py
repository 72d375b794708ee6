"""A transfer through the ledger pages in a real browser."""

from datetime import date

import pytest
from django.core.management import call_command

from registry.models import Account, Project, User
from tests.e2e.conftest import log_in
from trading import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_holder_requests_a_transfer_and_an_admin_settles_it(page_factory, screenshot):
    call_command("load_bijie_demo")
    project = Project.objects.get(name_en__startswith="Baili")
    seller_account = project.owner.accounts.get(kind="holding")
    # The demo has issued credits already; this test counts from there.
    before = services_balance(seller_account)["active"]
    services.issue_batch(
        actor=User.objects.get(username="registry_admin_demo"),
        project=project,
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=1000,
        buffer_quantity=100,
        holder_account=seller_account,
    )
    buyer_account = Account.objects.get(
        organization__name_en__startswith="Guizhou Lvzhu", kind="holding"
    )
    # The demo's buyer already holds what it bought and did not retire.
    buyer_before = services_balance(buyer_account)["active"]

    seller = page_factory(locale="en-US")
    log_in(seller, "bureau_demo")
    seller.get_by_role("link", name="Accounts").click()
    seller.get_by_role("link", name="Request a transfer").first.click()
    seller.get_by_label("Quantity (t CO2e)").fill("250")
    seller.get_by_label("To account number").fill(buyer_account.number)
    seller.get_by_label("Price (CNY per t CO2e)").fill("88.50")
    seller.get_by_role("button", name="Request the transfer").click()
    seller.wait_for_selector(".messages")
    assert "waiting for a registry admin" in seller.locator(".messages").inner_text()
    assert "Pending review" in seller.locator("main").inner_text()
    screenshot(seller, "ledger-account-en")

    admin = page_factory(locale="zh-CN")
    log_in(admin, "registry_admin_demo")
    admin.get_by_role("link", name="审核队列").click()
    assert "250 t CO2e" in admin.locator(".review-item").first.inner_text()
    screenshot(admin, "ledger-review-queue-zh")
    admin.get_by_role("button", name="批准并结算").first.click()
    admin.wait_for_selector(".messages")
    assert "已结算" in admin.locator(".messages").inner_text()

    balances = {
        account.number: services_balance(account)
        for account in (seller_account, buyer_account)
    }
    assert balances[seller_account.number]["active"] == before + 900 - 250
    assert balances[buyer_account.number]["active"] == buyer_before + 250
    admin.goto("/ledger/journal/")
    assert admin.locator("table.journal tbody tr").count() >= 4
    screenshot(admin, "ledger-journal-zh")


def services_balance(account):
    from trading.selectors import get_account_balance

    return get_account_balance(account=account)
