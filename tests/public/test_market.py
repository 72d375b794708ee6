"""The public market (public.market): open listings with filters, sort, pages,
CSV and map; a listing's page; the project page's listings; prices of settled
sales per month, vintage and ecosystem, and the best offer. Listings are made
through trading.market, as sellers make them."""

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.urls import reverse as django_reverse
from django.utils import timezone

from public import market as market_views
from public import selectors
from registry.models import Account, Project
from registry.roles import Role
from tests.public.conftest import new_key
from tests.registry.projects import make_project, square
from trading import market, services
from trading.models import LedgerEntry, Listing

pytestmark = pytest.mark.django_db

DAFANG, WEINING = "520521", "520526"


def _fresh_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"market-{uuid.uuid4()}",
        }
    }


@pytest.fixture(autouse=True)
def own_cache(settings):
    """A cache of this test's own: the market keeps its figures in the cache,
    and the production-stack stage's Redis is shared."""
    _fresh_cache(settings)


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _batch(admin, project, holder, *, vintage, year=None, quantity=1000):
    return services.issue_batch(
        actor=admin,
        project=project,
        vintage=vintage,
        monitoring_start=date(year or vintage, 1, 1),
        monitoring_end=date(year or vintage, 12, 31),
        quantity=quantity,
        buffer_quantity=0,
        holder_account=holder,
    )


def _list(seller, account, batch, *, price, quantity=100, lot=10, **extra):
    return market.create_listing(
        actor=seller,
        account=account,
        batch=batch,
        quantity=quantity,
        price_per_tonne=price,
        minimum_lot=lot,
        idempotency_key=new_key(),
        **extra,
    )


def _buy(buyer, buyer_account, listing, quantity, **extra):
    return market.place_order(
        actor=buyer,
        listing=listing,
        buyer_account=buyer_account,
        quantity=quantity,
        idempotency_key=new_key(),
        **extra,
    )


def _settle(order, seller, admin):
    market.confirm_payment(
        actor=seller,
        order=order,
        amount=order.amount,
        paid_on=timezone.localdate(),
        reference="ICBC-0042",
    )
    services.approve_request(actor=admin, request=order.trade_request)


def _listed(response) -> list[int]:
    """The listings a market page shows, in its order."""
    body = response.content.decode()
    rows = body.split('<tr data-listing="')[1:]
    return [int(row.split('"', 1)[0]) for row in rows]


@pytest.fixture
def grassland(seller, seller_org):
    return make_project(
        actor=seller,
        owner=seller_org,
        geometry=square(104.30, 26.90, 800),
        county=WEINING,
        name="草地项目",
        name_en="Grassland project",
        ecosystem_focus="grassland",
    )


@pytest.fixture
def offers(admin, seller, seller_account, project, grassland):
    """Three open listings: the forest project (Dafang) vintage 2025 at 80.00
    and 120.00, the grassland project (Weining) vintage 2024 at 60.00."""
    forest_2025 = _batch(admin, project, seller_account, vintage=2025)
    grass_2024 = _batch(admin, grassland, seller_account, vintage=2024)
    return {
        "forest_80": _list(seller, seller_account, forest_2025, price="80", lot=10),
        "forest_120": _list(
            seller,
            seller_account,
            forest_2025,
            price="120",
            quantity=50,
            lot=5,
            ends_on=timezone.localdate() + timedelta(days=30),
            note="Delivered within 3 days.",
        ),
        "grass_60": _list(
            seller, seller_account, grass_2024, price="60", quantity=300, lot=50
        ),
        "forest_2025": forest_2025,
        "grass_2024": grass_2024,
    }


# The list ------------------------------------------------------------------------


def test_the_market_needs_no_login_and_shows_each_listings_facts(
    client, offers, project
):
    response = client.get(reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    body = response.content.decode()
    listing = offers["forest_120"]
    assert listing.number in body  # L-000002
    assert reverse("public:market-listing", args=[listing.pk]) in body
    assert reverse("registry:project-detail", args=[project.code]) in body
    assert "Dafang County" in body and "Weining" in body
    assert "Forest" in body and "Grassland" in body
    assert "120.00" in body and "50" in body
    assert (timezone.localdate() + timedelta(days=30)).isoformat() in body
    assert "until withdrawn" in body  # the listings without an end date
    assert "3 listings open" in body


def test_the_public_navigation_leads_to_the_market(client, db):
    home = client.get("/").content.decode()
    assert reverse("public:market") in home
    statistics = client.get(reverse("public:statistics")).content.decode()
    assert f'href="{reverse("public:market")}"' in statistics


def test_cheapest_first_unless_sorted_otherwise(client, offers):
    a80, a120, g60 = (offers[key].pk for key in ("forest_80", "forest_120", "grass_60"))
    expected = {
        "": [g60, a80, a120],
        "price": [g60, a80, a120],
        "-price": [a120, a80, g60],
        "quantity": [a120, a80, g60],  # 50, 100, 300 t left
        "-quantity": [g60, a80, a120],
        "vintage": [g60, a80, a120],  # 2024, then 2025 by price
        "-vintage": [a80, a120, g60],
        "newest": [g60, a120, a80],
    }
    for sort, order in expected.items():
        response = client.get(reverse("public:market"), {"sort": sort})
        assert _listed(response) == order, sort


@pytest.mark.parametrize(
    ("filters", "shown"),
    [
        ({"county": WEINING}, ["grass_60"]),
        ({"county": DAFANG}, ["forest_80", "forest_120"]),
        ({"ecosystem": "grassland"}, ["grass_60"]),
        ({"ecosystem": "forest"}, ["forest_80", "forest_120"]),
        ({"ecosystem": "wetland"}, []),
        ({"vintage": "2025"}, ["forest_80", "forest_120"]),
        ({"vintage": "2024"}, ["grass_60"]),
        ({"price_min": "70"}, ["forest_80", "forest_120"]),
        ({"price_min": "80.00"}, ["forest_80", "forest_120"]),  # inclusive
        ({"price_max": "100"}, ["grass_60", "forest_80"]),
        ({"price_max": "60"}, ["grass_60"]),  # inclusive
        ({"price_min": "61", "price_max": "119.99"}, ["forest_80"]),
        ({"county": DAFANG, "price_max": "100"}, ["forest_80"]),
    ],
)
def test_each_filter_leaves_out_what_it_should(client, offers, filters, shown):
    response = client.get(reverse("public:market"), filters)
    assert response.status_code == 200
    assert _listed(response) == [offers[key].pk for key in shown]


def test_the_form_shows_the_filters_chosen(client, offers, project):
    response = client.get(
        reverse("public:market"),
        {
            "county": WEINING,
            "ecosystem": "grassland",
            "vintage": "2024",
            "price_min": "59.5",
            "price_max": "61",
            "sort": "-quantity",
            "project": project.code,
        },
    )
    body = response.content.decode()
    for selected in (WEINING, "grassland", "-quantity"):
        assert f'<option value="{selected}" selected>' in body
    assert body.count(" selected>") == 3
    for name, value in (
        ("vintage", "2024"),
        ("price_min", "59.5"),
        ("price_max", "61"),
    ):
        assert f'name="{name}" id="id_{name}" value="{value}"' in body
    assert f'<input type="hidden" name="project" value="{project.code}">' in body
    assert _listed(response) == []  # the grassland listing is not the project's


def test_a_projects_listings_only(client, offers, project):
    response = client.get(reverse("public:market"), {"project": project.code.lower()})
    assert _listed(response) == [offers["forest_80"].pk, offers["forest_120"].pk]
    assert "Show every listing" in response.content.decode()


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"price_min": "abc"}, "请以数字填写价格"),
        ({"price_max": "-5"}, "价格不能为负数"),
        ({"price_min": "NaN"}, "请以数字填写价格"),
        ({"price_min": "1e999"}, "价格过高"),
        ({"price_max": "9" * 19}, "价格"),
        ({"price_min": "95.123"}, "95.70"),
        ({"price_min": "100", "price_max": "50"}, ""),
        ({"vintage": "abc"}, ""),
        ({"vintage": "20250"}, ""),
        ({"sort": "price; DROP TABLE trading_listing"}, ""),
        ({"county": "999999"}, ""),
        ({"ecosystem": "<script>"}, ""),
        ({"price_min": "x" * 500}, ""),
        ({"project": "\x00"}, ""),
    ],
)
def test_bad_filters_get_a_translated_error_never_a_500(
    client, offers, filters, message
):
    response = client.get(
        reverse("public:market"), filters, HTTP_ACCEPT_LANGUAGE="zh-CN"
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error" role="alert"' in body
    assert message in body
    assert "<script>" not in body  # an echoed value is escaped
    # The valid filters still apply; the bad one is left out.
    assert len(_listed(response)) >= 1
    assert client.get(reverse("public:market-csv"), filters).status_code == 400
    assert client.get(reverse("public:market-map"), filters).status_code == 400


def test_a_range_upside_down_is_refused_in_the_visitors_language(client, offers):
    response = client.get(
        reverse("public:market"),
        {"price_min": "100", "price_max": "50"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "The highest price is below the lowest price." in response.content.decode()
    # The lowest price still applies; the highest, refused, does not.
    assert _listed(response) == [offers["forest_120"].pk]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "99999999999999999999"])
def test_malformed_page_numbers_show_a_page(client, offers, page):
    assert client.get(reverse("public:market"), {"page": page}).status_code == 200


def test_pages_keep_the_filters(client, offers, monkeypatch, seller, seller_account):
    monkeypatch.setattr("public.market.PER_PAGE", 2)
    response = client.get(reverse("public:market"), {"sort": "-price", "county": ""})
    assert len(_listed(response)) == 2
    body = response.content.decode()
    assert "?sort=-price&amp;county=&amp;page=2" in body
    second = client.get(reverse("public:market"), {"sort": "-price", "page": "2"})
    assert _listed(second) == [offers["grass_60"].pk]


def test_closed_ended_and_sold_out_listings_are_never_shown(
    client, offers, seller, seller_account, buyer, buyer_account, project
):
    batch = offers["forest_2025"]
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    withdrawn = _list(seller, seller_account, batch, price="10")
    market.withdraw_listing(actor=seller, listing=withdrawn)
    expired = _list(seller, seller_account, batch, price="11", ends_on=today)
    Listing.objects.filter(pk=expired.pk).update(ends_on=yesterday)
    assert market.expire_listings() == 1
    # Past its end date but still open: the expiry task has not run yet.
    ended = _list(seller, seller_account, batch, price="12", ends_on=today)
    Listing.objects.filter(pk=ended.pk).update(ends_on=yesterday)
    sold_out = _list(seller, seller_account, batch, price="13", quantity=20, lot=20)
    _buy(buyer, buyer_account, sold_out, 20)
    assert Listing.objects.get(pk=ended.pk).status == Listing.Status.OPEN
    assert Listing.objects.get(pk=sold_out.pk).quantity_left == 0
    hidden = {withdrawn.pk, expired.pk, ended.pk, sold_out.pk}
    showing = {offers[key].pk for key in ("forest_80", "forest_120", "grass_60")}

    assert set(_listed(client.get(reverse("public:market")))) == showing
    for sort in ("-price", "newest", "quantity"):
        page = client.get(reverse("public:market"), {"sort": sort})
        assert not set(_listed(page)) & hidden
    numbers = {row[0] for row in _csv(client.get(reverse("public:market-csv")))[1:]}
    assert numbers == {Listing(pk=pk).number for pk in showing}
    points = client.get(reverse("public:market-map")).json()["features"]
    assert sum(point["properties"]["listings"] for point in points) == 3
    assert selectors.best_offer()["pk"] == offers["grass_60"].pk  # not 10-13
    Project.objects.filter(pk=project.pk).update(status=Project.Status.REGISTERED)
    page = client.get(reverse("registry:project-detail", args=[project.code]))
    assert set(_listed(page)) == {offers["forest_80"].pk, offers["forest_120"].pk}


def test_seller_names_only_where_the_account_is_public(client, offers, seller_account):
    def bodies():
        page = client.get(reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en")
        detail = client.get(
            reverse("public:market-listing", args=[offers["grass_60"].pk]),
            HTTP_ACCEPT_LANGUAGE="en",
        )
        rows = _csv(client.get(reverse("public:market-csv")))
        return page.content.decode(), detail.content.decode(), rows

    page, detail, rows = bodies()
    for body in (page, detail):
        assert "Forest farm" not in body and "林场" not in body
        assert "holder not named publicly" in body
    assert {row[17] for row in rows[1:]} == {""}
    assert {row[16] for row in rows[1:]} == {seller_account.number}

    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    page, detail, rows = bodies()
    assert "Forest farm" in page and "Forest farm" in detail
    assert {row[17] for row in rows[1:]} == {"Forest farm"}


def test_names_in_the_rows_are_escaped(client, offers, project, seller_account):
    Project.objects.filter(pk=project.pk).update(name_en="<script>alert(1)</script>")
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    seller_account.organization.__class__.objects.filter(
        pk=seller_account.organization_id
    ).update(name_en='<img src=x onerror="alert(2)">')
    body = client.get(
        reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in body


def test_csv_of_the_filtered_listings(client, offers, project):
    rows = _csv(client.get(reverse("public:market-csv"), {"price_min": "70"}))
    assert rows[0][:4] == ["listing", "listing_url", "project", "project_name_zh"]
    assert rows[0][11:13] == ["price_cny_per_t", "quantity_left_t_co2e"]
    by_number = {row[0]: row for row in rows[1:]}
    assert set(by_number) == {offers["forest_80"].number, offers["forest_120"].number}
    row = by_number[offers["forest_120"].number]
    batch = offers["forest_2025"]
    assert row[1] == "http://testserver" + reverse(
        "public:market-listing", args=[offers["forest_120"].pk]
    )
    assert row[2:11] == [
        project.code,
        "测试项目",
        "Test project",
        DAFANG,
        "大方县",
        "Dafang County",
        "forest",
        "2025",
        batch.serial_label,
    ]
    assert row[11:16] == [
        "120.00",
        "50",
        "50",
        "5",
        (timezone.localdate() + timedelta(days=30)).isoformat(),
    ]
    assert row[18] == timezone.localdate().isoformat()
    # Sorted like the page.
    rows = _csv(client.get(reverse("public:market-csv"), {"sort": "-price"}))
    assert [row[11] for row in rows[1:]] == ["120.00", "80.00", "60.00"]


def test_the_map_has_one_point_per_project_with_its_offer(client, offers, project):
    data = client.get(reverse("public:market-map")).json()
    points = {f["properties"]["code"]: f for f in data["features"]}
    assert len(points) == 2
    forest = points[project.code]
    assert forest["properties"]["listings"] == 2
    assert forest["properties"]["tonnes"] == 150
    assert forest["properties"]["lowest_price"] == "80.00"
    assert forest["properties"]["url"] == reverse(
        "registry:project-detail", args=[project.code]
    )
    lon, lat = forest["geometry"]["coordinates"]
    assert project.bbox_west < lon < project.bbox_east
    assert project.bbox_south < lat < project.bbox_north
    filtered = client.get(reverse("public:market-map"), {"price_min": "100"}).json()
    assert [f["properties"]["listings"] for f in filtered["features"]] == [1]


# A listing's page -------------------------------------------------------------------


def _fake_order_form(monkeypatch, *, exists: bool):
    def fake(name, *args, **kwargs):
        if name == "trading:order-create":
            if not exists:
                raise NoReverseMatch(name)
            return f"/ledger/market/{kwargs.get('args', [0])[0]}/order/"
        return django_reverse(name, *args, **kwargs)

    monkeypatch.setattr(market_views, "reverse", fake)


def test_a_listings_page_shows_the_offer_and_its_batch(client, offers, project):
    listing = offers["forest_120"]
    response = client.get(
        reverse("public:market-listing", args=[listing.pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f"L-{listing.pk:06d}" in body
    assert 'data-state="open"' in body
    assert "120.00" in body and "50 / 50 t CO2e" in body
    assert "5 t CO2e" in body
    assert offers["forest_2025"].serial_label in body
    assert reverse("trading:batch-detail", args=[offers["forest_2025"].pk]) in body
    assert reverse("registry:project-detail", args=[project.code]) in body
    assert "Delivered within 3 days." in body
    assert "Log in to order" in body  # a visitor
    assert "data-order-link" not in body


@pytest.mark.parametrize("exists", [True, False])
def test_a_signed_in_buyer_gets_the_order_form_once_it_exists(
    client, offers, buyer, monkeypatch, exists
):
    _fake_order_form(monkeypatch, exists=exists)
    client.force_login(buyer)
    listing = offers["forest_80"]
    response = client.get(reverse("public:market-listing", args=[listing.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert ("data-order-link" in body) is exists
    if exists:
        assert f'href="/ledger/market/{listing.pk}/order/"' in body


def test_the_order_link_leads_to_the_order_form(client, offers, buyer):
    client.force_login(buyer)
    listing = offers["forest_80"]
    body = client.get(
        reverse("public:market-listing", args=[listing.pk])
    ).content.decode()
    order_form = reverse("trading:order-create", args=[listing.pk])
    assert f'href="{order_form}" data-order-link' in body
    assert client.get(order_form).status_code == 200


def test_no_order_link_for_the_seller_or_a_verifier(
    client, offers, seller, make_user, monkeypatch
):
    _fake_order_form(monkeypatch, exists=True)
    url = reverse("public:market-listing", args=[offers["forest_80"].pk])
    for user in (seller, make_user(role=Role.VERIFIER)):
        client.force_login(user)
        assert "data-order-link" not in client.get(url).content.decode()


def test_a_closed_listings_page_still_shows_marked_closed(
    client, offers, seller, buyer, monkeypatch
):
    _fake_order_form(monkeypatch, exists=True)
    listing = offers["forest_80"]
    market.withdraw_listing(actor=seller, listing=listing)
    client.force_login(buyer)
    response = client.get(
        reverse("public:market-listing", args=[listing.pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-state="closed"' in body
    assert "withdrawn" in body
    assert "0 / 100 t CO2e" in body
    assert "data-order-link" not in body


def test_a_listing_past_its_end_date_is_closed_before_the_expiry_task_runs(
    client, offers, buyer, monkeypatch
):
    _fake_order_form(monkeypatch, exists=True)
    listing = offers["forest_120"]
    Listing.objects.filter(pk=listing.pk).update(
        ends_on=timezone.localdate() - timedelta(days=1)
    )
    client.force_login(buyer)
    body = client.get(
        reverse("public:market-listing", args=[listing.pk])
    ).content.decode()
    assert 'data-state="closed"' in body
    assert "data-order-link" not in body


def test_an_unknown_listing_is_a_404_page(client, db):
    response = client.get(reverse("public:market-listing", args=[999999]))
    assert response.status_code == 404
    assert 'class="site-header"' in response.content.decode()


# The project page -------------------------------------------------------------------


def test_the_project_page_lists_its_open_listings(client, offers, project, grassland):
    Project.objects.filter(pk__in=[project.pk, grassland.pk]).update(
        status=Project.Status.REGISTERED
    )
    response = client.get(
        reverse("registry:project-detail", args=[project.code]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.content.decode()
    assert _listed(response) == [offers["forest_80"].pk, offers["forest_120"].pk]
    for key in ("forest_80", "forest_120"):
        assert reverse("public:market-listing", args=[offers[key].pk]) in body
    assert f"?project={project.code}" in body
    other = client.get(reverse("registry:project-detail", args=[grassland.code]))
    assert _listed(other) == [offers["grass_60"].pk]


def test_a_project_with_credits_but_no_listing_says_so(
    client, admin, seller, seller_org, seller_account
):
    alone = make_project(
        actor=seller, owner=seller_org, geometry=square(105.65, 27.18, 300)
    )
    Project.objects.filter(pk=alone.pk).update(status=Project.Status.REGISTERED)
    _batch(admin, alone, seller_account, vintage=2023)
    body = client.get(
        reverse("registry:project-detail", args=[alone.code]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "offered on the market now" in body


# Prices ----------------------------------------------------------------------------


@pytest.fixture
def sales(offers, seller, seller_account, buyer, buyer_account, admin):
    """Settled: 30 t of forest 2025 at 80.00 (a market order), 100 t of
    grassland 2024 at 60.00 (a market order retired on delivery), 7 t of
    grassland 2024 at 70.33 (a transfer outside the market). Not settled: an
    order awaiting payment and a declined one. Not a sale: a retirement."""
    _settle(_buy(buyer, buyer_account, offers["forest_80"], 30), seller, admin)
    delivered = _buy(
        buyer,
        buyer_account,
        offers["grass_60"],
        100,
        retire_on_delivery=True,
        beneficiary="毕节市某公司",
        purpose="voluntary",
    )
    _settle(delivered, seller, admin)
    transfer = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=7,
        price_per_tonne="70.33",
        idempotency_key=new_key(),
        batch=offers["grass_2024"],
    )
    services.approve_request(actor=admin, request=transfer)
    _buy(buyer, buyer_account, offers["forest_120"], 10)  # awaiting payment
    declined = _buy(buyer, buyer_account, offers["grass_60"], 50)
    market.decline_order(actor=seller, order=declined, reason="No payment came.")
    retirement = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=5,
        beneficiary="Someone",
        beneficiary_public=True,
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
        batch=offers["grass_2024"],
    )
    services.approve_request(actor=admin, request=retirement)
    return delivered


def test_a_sale_retired_on_delivery_is_in_the_journal_as_one_priced_transfer(sales):
    request = sales.trade_request
    kinds = {
        entry.kind: entry.price_per_tonne
        for entry in LedgerEntry.objects.filter(
            trade_request__in=[request, sales.retirement_request]
        )
    }
    # What the statistics rely on: only the transfer carries the price.
    assert kinds == {
        "order": None,
        "transfer": D("60.00"),
        "reserve": None,
        "retire": None,
    }


def test_prices_per_month_vintage_and_ecosystem_count_each_sale_once(sales):
    # (30 x 80.00 + 100 x 60.00 + 7 x 70.33) / 137 = 8892.31 / 137 = 64.9074...
    today = timezone.localdate()
    month = selectors.transfers_by_month()
    assert [(row["tonnes"], row["average_price"]) for row in month] == [
        (137, D("64.91"))
    ]
    assert (month[0]["month"].year, month[0]["month"].month) == (
        today.year,
        today.month,
    )
    assert selectors.transfers_by_vintage() == [
        # (100 x 60.00 + 7 x 70.33) / 107 = 6492.31 / 107 = 60.6758...
        {"vintage": 2024, "tonnes": 107, "average_price": D("60.68")},
        {"vintage": 2025, "tonnes": 30, "average_price": D("80.00")},
    ]
    assert selectors.transfers_by_ecosystem() == [
        {"ecosystem": "forest", "tonnes": 30, "average_price": D("80.00")},
        {"ecosystem": "grassland", "tonnes": 107, "average_price": D("60.68")},
    ]
    recent = selectors.market_months()
    assert len(recent) == 12
    assert recent[-1] == {
        "year": today.year,
        "month": today.month,
        "label": f"{today.year}-{today.month:02d}",
        "tonnes": 137,
        "average_price": D("64.91"),
    }
    assert all(
        row["tonnes"] == 0 and row["average_price"] is None for row in recent[:-1]
    )


def test_sales_older_than_12_months_leave_the_market_chart(sales):
    # The journal is append-only: move the clock instead of the sales.
    in_a_year = timezone.now() + timedelta(days=366)
    months = selectors.market_months(now=in_a_year)
    assert len(months) == 12 and sum(row["tonnes"] for row in months) == 0
    assert selectors.transfers_by_month(since=timezone.now() + timedelta(days=1)) == []
    # Eleven months on, this month is the chart's first.
    today = timezone.localdate()
    year, month = divmod(today.year * 12 + today.month - 1 + 11, 12)
    later = datetime(year, month + 1, 2, tzinfo=timezone.get_current_timezone())
    months = selectors.market_months(now=later)
    assert months[0]["tonnes"] == 137


def test_the_market_page_shows_the_last_12_months_and_the_best_offer(client, sales):
    response = client.get(reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    chart = response.context["charts"]["market"]
    assert len(chart["labels"]) == 12
    assert chart["tonnes"][-1] == 137 and chart["price"][-1] == "64.91"
    assert chart["price"][0] is None
    assert 'data-chart="market"' in body and "chart-data" in body
    assert '<td class="num">137</td><td class="num">64.91</td>' in body
    # The best offer: the grassland listing at 60.00, 300 - 100 - 50 (declined,
    # so back on the listing) = 200 t left.
    best = response.context["best"]
    assert (best["price"], best["quantity"]) == (D("60.00"), 200)
    assert "data-best-price>60.00<" in body
    assert "data-best-quantity>200 t CO2e<" in body


def test_the_best_offer_is_the_lowest_price_with_its_quantity(
    offers, seller, seller_account
):
    best = selectors.best_offer()
    assert (best["pk"], best["price"], best["quantity"]) == (
        offers["grass_60"].pk,
        D("60.00"),
        300,
    )
    assert (best["tonnes_at_price"], best["listings_at_price"]) == (300, 1)
    twin = _list(
        seller, seller_account, offers["forest_2025"], price="60.00", quantity=40
    )
    best = selectors.best_offer()
    assert best["pk"] == offers["grass_60"].pk  # the older of equals
    assert best["quantity"] == 300  # its own tonnes left
    assert (best["tonnes_at_price"], best["listings_at_price"]) == (340, 2)
    cheaper = _list(
        seller, seller_account, offers["forest_2025"], price="59.99", quantity=15
    )
    assert selectors.best_offer()["pk"] == cheaper.pk
    market.withdraw_listing(actor=seller, listing=cheaper)
    market.withdraw_listing(actor=seller, listing=twin)
    assert selectors.best_offer()["pk"] == offers["grass_60"].pk


def test_what_the_market_keeps_in_the_cache_follows_every_change(
    client, offers, seller, seller_account, buyer, buyer_account
):
    def look():
        page = client.get(reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en")
        points = client.get(reverse("public:market-map")).json()["features"]
        best = page.context["best"]
        return (
            page.context["page"].paginator.count,
            (best["price"], best["quantity"]),
            sum(point["properties"]["listings"] for point in points),
        )

    assert look() == (3, (D("60.00"), 300), 3)
    cheaper = _list(
        seller, seller_account, offers["forest_2025"], price="55", quantity=20
    )
    assert look() == (4, (D("55.00"), 20), 4)
    _buy(buyer, buyer_account, cheaper, 15)
    assert look() == (4, (D("55.00"), 5), 4)
    market.withdraw_listing(actor=seller, listing=cheaper)
    assert look() == (3, (D("60.00"), 300), 3)


def test_no_offer_no_best_offer(client, db):
    assert selectors.best_offer() is None
    body = client.get(reverse("public:market"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Nothing is offered on the market now." in body.content.decode()


def test_the_statistics_page_has_sales_per_ecosystem(client, sales):
    rows = _csv(client.get(reverse("public:statistics-csv", args=["ecosystem-sales"])))
    assert rows == [
        ["ecosystem", "volume_t_co2e", "average_price_cny_per_t"],
        ["forest", "30", "80.00"],
        ["grassland", "107", "60.68"],
    ]
    response = client.get(reverse("public:statistics"), HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    assert 'data-chart="ecosystem_sales"' in body
    assert response.context["charts"]["ecosystem_sales"]["price"] == [
        "80.00",
        "60.68",
    ]
    assert '<td>Grassland</td><td class="num">107</td>' in body


# Queries ---------------------------------------------------------------------------


@pytest.fixture
def more_listings(admin, seller, seller_account, project, grassland):
    """``more_listings(count)``: that many more listings, over two projects
    in two counties and two vintages."""
    batches = [
        _batch(admin, project, seller_account, vintage=2023, quantity=5000),
        _batch(admin, grassland, seller_account, vintage=2022, quantity=5000),
    ]
    made = []

    def make(count):
        for _ in range(count):
            made.append(
                _list(
                    seller,
                    seller_account,
                    batches[len(made) % 2],
                    price=str(50 + len(made)),
                    quantity=10,
                    lot=1,
                )
            )

    return make


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(queries)


def test_the_market_costs_the_same_queries_for_1_or_20_listings(
    client, more_listings, seller_account, settings
):
    more_listings(1)
    url = reverse("public:market")
    filters = {"county": DAFANG, "sort": "-vintage", "price_min": "1"}

    def counts():
        _fresh_cache(settings)
        cold = _queries(client, url)
        warm = _queries(client, url)
        filtered = _queries(client, url, filters)
        return cold, warm, filtered

    one = counts()
    more_listings(19)
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    twenty = counts()
    assert twenty == one
    # Warm: the market's version and which holders are public (the page's
    # content comes from the cache). Cold, also the counties, the count, the
    # page's rows, their sellers' names, the 12 months and the best offer
    # (2); other filters, their count, rows and names.
    assert one == (9, 2, 5)


def test_the_csv_and_map_cost_the_same_queries_for_1_or_20_listings(
    client, more_listings, settings
):
    more_listings(1)
    csv_url, map_url = reverse("public:market-csv"), reverse("public:market-map")

    def counts():
        _fresh_cache(settings)
        with CaptureQueriesContext(connection) as csv_queries:
            rows = _csv(client.get(csv_url))
        _fresh_cache(settings)
        cold_map = _queries(client, map_url, {"price_max": "1000"})
        warm_map = _queries(client, map_url, {"price_max": "1000"})
        return len(csv_queries), cold_map, warm_map, rows

    *one, rows = counts()
    assert len(rows) == 2
    more_listings(19)
    *twenty, rows = counts()
    assert len(rows) == 21
    assert twenty == one
    # CSV: counties, the rows (one query, read in chunks). Map: counties, the
    # market's version and one grouped query; then the version only.
    assert one == [2, 3, 1]


def test_a_listings_page_and_the_project_page_cost_a_fixed_number_of_queries(
    client, offers, project, django_assert_num_queries
):
    with django_assert_num_queries(1):
        client.get(reverse("public:market-listing", args=[offers["grass_60"].pk]))
    Project.objects.filter(pk=project.pk).update(status=Project.Status.REGISTERED)
    url = reverse("registry:project-detail", args=[project.code])
    few = _queries(client, url)
    batch = offers["forest_2025"]
    seller = offers["forest_80"].created_by
    for price in ("81", "82", "83"):
        _list(seller, offers["forest_80"].account, batch, price=price)
    assert _queries(client, url) == few


def test_the_kept_market_page_is_per_language_and_never_keeps_the_visitor(
    client, offers, make_user
):
    url = reverse("public:market")
    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "碳信用交易市场" in chinese
    assert "Carbon-credit market" in english and "碳信用交易市场" not in english
    visitor = make_user(username="market_visitor")
    client.force_login(visitor)
    signed_in = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "market_visitor" in signed_in
    client.logout()
    assert "market_visitor" not in client.get(url).content.decode()
