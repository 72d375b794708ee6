"""Forms work without a mouse, every field has a label, and pages fit a phone."""

import pytest
from django.core.management import call_command

from registry.models import Account, Project
from tests.e2e.conftest import log_in
from trading.models import TradeRequest

pytestmark = pytest.mark.django_db(transaction=True)

# Every visible form control and whether something names it for a screen
# reader: a <label>, aria-label or aria-labelledby.
UNLABELLED_CONTROLS = """
() => [...document.querySelectorAll('main input, main select, main textarea')]
  .filter((el) => !['hidden', 'submit', 'button'].includes(el.type))
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length)
    && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.name || el.id || el.outerHTML.slice(0, 80))
"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def _form_pages():
    baili = Project.objects.get(name_en__startswith="Baili")
    return {
        None: [
            "/login/",
            "/projects/",
            "/public/",
            "/public/serials/?serial=1",
            "/market/",
        ],
        "bureau_demo": [
            "/projects/new/",
            "/estimation/datasets/new/",
            f"/estimation/runs/new/?project={baili.code}",
            "/ledger/requests/transfer/",
            "/ledger/requests/retirement/",
        ],
        "registry_admin_demo": [
            "/ledger/review/",
            "/ledger/journal/",
            "/ledger/requests/cancellation/",
        ],
        "buyer_demo": ["/ledger/dashboard/", "/ledger/requests/retirement/"],
    }


@pytest.mark.parametrize("width", [1280, 390])
def test_every_form_field_has_a_label_and_pages_fit_the_screen(page_factory, width):
    call_command("load_bijie_demo")
    for username, paths in _form_pages().items():
        page = page_factory(locale="zh-CN", width=width)
        if username:
            log_in(page, username)
        for path in paths:
            response = page.goto(path)
            assert response.status == 200, path
            assert page.evaluate(UNLABELLED_CONTROLS) == [], path
            assert page.evaluate(OVERFLOW) <= 0, f"{path} scrolls sideways at {width}"


def _tab_to(page, name: str) -> None:
    """Press Tab until the form field called ``name`` has the focus."""
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == name:
            return
    raise AssertionError(f"Tab never reached the field {name!r}")


def test_logging_in_and_requesting_a_transfer_with_the_keyboard_alone(page_factory):
    call_command("load_bijie_demo")
    baili = Project.objects.get(name_en__startswith="Baili")
    seller_account = baili.owner.accounts.get(kind="holding")
    buyer_account = Account.objects.get(
        organization__name_en__startswith="Guizhou Lvzhu", kind="holding"
    )
    page = page_factory(locale="en-US")
    page.goto("/login/")
    _tab_to(page, "username")
    page.keyboard.type("bureau_demo")
    page.keyboard.press("Tab")
    page.keyboard.type("bijie-demo")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login/" not in url)
    assert page.get_by_role("button", name="Log out").is_visible()

    page.goto(f"/ledger/requests/transfer/?account={seller_account.number}")
    _tab_to(page, "quantity")
    page.keyboard.type("7")
    _tab_to(page, "to_account_number")
    page.keyboard.type(buyer_account.number)
    _tab_to(page, "price_per_tonne")
    page.keyboard.type("90")
    page.keyboard.press("Enter")
    page.wait_for_selector(".messages")
    request = TradeRequest.objects.get(from_account=seller_account, quantity=7)
    assert request.status == TradeRequest.Status.PENDING
