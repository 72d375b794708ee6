"""The public market in a browser: its chart drawn, its map with one point per
listed project, the listings as cards on a 390 px phone, a listing's page;
the statistics page's charts all drawn (a chart script that stops half-way
leaves the canvases blank but in place)."""

import pytest
from django.utils import timezone

from registry.models import Account, Project
from tests.public.test_market import _batch, _buy, _list, _settle
from tests.registry.projects import make_project, square
from tests.trading.conftest import (  # noqa: F401 (fixtures)
    buyer,
    buyer_account,
    buyer_org,
    seller,
    seller_account,
    seller_org,
)

pytestmark = pytest.mark.django_db(transaction=True)

DRAWN = (
    "name => { const c = document.querySelector(`canvas[data-chart='${name}']`);"
    " return !!(c && !c.hidden && Chart.getChart(c)); }"
)


@pytest.fixture
def market(reference_data, admin, seller, seller_org, seller_account):  # noqa: F811
    projects = []
    for index, ecosystem in enumerate(["forest", "grassland", "wetland"]):
        project = make_project(
            actor=seller,
            owner=seller_org,
            geometry=square(105.55 + index * 0.05, 27.1, 800),
            ecosystem_focus=ecosystem,
            name=f"项目{index}",
            name_en=f"Project {index}",
        )
        Project.objects.filter(pk=project.pk).update(status=Project.Status.REGISTERED)
        projects.append(project)
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    listings = []
    for index, project in enumerate(projects):
        batch = _batch(admin, project, seller_account, vintage=2023 + index)
        for offset in range(4):
            listings.append(
                _list(
                    seller,
                    seller_account,
                    batch,
                    price=str(60 + index * 10 + offset),
                    ends_on=timezone.localdate() + timezone.timedelta(days=30),
                    note="可开具发票。",
                )
            )
    return listings


def test_the_market_on_a_desktop_and_a_phone(
    page_factory,
    screenshot,
    market,
    admin,
    seller,  # noqa: F811 (fixtures)
    buyer,  # noqa: F811
    buyer_account,  # noqa: F811
):
    listings = market
    _settle(_buy(buyer, buyer_account, listings[0], 30), seller, admin)
    errors = []
    for locale, width in (("en-US", 1280), ("zh-CN", 390)):
        page = page_factory(locale=locale, width=width, height=844)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto("/market/")
        page.wait_for_selector("[data-market-map][data-loaded]")
        assert page.get_attribute("[data-market-map]", "data-loaded") == "3"
        assert page.evaluate(DRAWN, "market")
        assert page.locator("tr[data-listing]").count() == 12
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"market-{locale[:2]}-{width}")
        page.locator("tr[data-listing] a").first.click()
        page.wait_for_selector("[data-state='open']")
        assert "可开具发票。" in page.locator("main").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.goto("/public/statistics/")
    for name in ("years", "months", "vintages", "ecosystem_sales"):
        page.wait_for_function(DRAWN, arg=name)
    assert errors == []
