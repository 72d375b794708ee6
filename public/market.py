"""The public market, no sign-in: the open listings with filters, sort and
pages, as CSV and on a map; a listing's own page; the recent prices and the
best offer. Thin, like ``public.views``: the reads are in
``public.selectors`` (and ``trading.selectors``).

The rows are read live, one page in one query. What every visitor sees
alike and costs more than an index lookup is kept in the cache under the
market's version (``public.selectors.market_version``: the journal's head
and the date), so it is never stale: the monthly prices and the best offer,
the map's points per project, the number of listings each set of filters
matches. The counties (names and codes) are kept for an hour."""

import hashlib

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from public import selectors
from public.forms import MarketFilterForm
from public.views import ECOSYSTEM_LABELS, _csv_response
from registry.roles import Role
from registry.selectors import get_user_organization_ids, has_role
from trading.models import Listing
from trading.selectors import get_listing

# The figures are kept under the market's version, which changes with every
# change they depend on: the time only bounds how long an unused one stays.
MARKET_CACHE_SECONDS = 300
COUNTIES_CACHE_SECONDS = 3600
SUMMARY_KEY = "public:market:summary:"
COUNTIES_KEY = "public:market:counties"
MAP_KEY = "public:market:map:"
COUNT_KEY = "public:market:count:"
PER_PAGE = 50
# The market page's content, per version, language and query (see market()):
# queries longer than this are rendered afresh, so odd URLs cannot fill the
# cache; entries live a few minutes at most, a new version replaces them.
PAGE_KEY = "public:market:page:"
PAGE_CACHE_SECONDS = 120
PAGE_CACHE_MAX_QUERY = 300


def _cached(key: str, compute, seconds: int = MARKET_CACHE_SECONDS):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, seconds)
    return value


def _counties() -> list[dict]:
    """The county filter's choices, named in the page's language."""
    chinese = (get_language() or "").startswith("zh")
    return [
        {**county, "name": county["name_zh"] if chinese else county["name_en"]}
        for county in _all_counties()
    ]


def _all_counties() -> list[dict]:
    return _cached(COUNTIES_KEY, selectors.market_counties, COUNTIES_CACHE_SECONDS)


def _county_names(ids: set[int]) -> dict[int, tuple[str, str]]:
    """{county id: (Chinese name, English name)} from the cached counties,
    read afresh when one is missing (the divisions were loaded again)."""

    def names() -> dict[int, tuple[str, str]]:
        return {
            county["pk"]: (county["name_zh"], county["name_en"])
            for county in _all_counties()
        }

    found = names()
    if not ids <= found.keys():
        cache.delete(COUNTIES_KEY)
        found = names()
    return found


def _filter_form(request) -> MarketFilterForm:
    return MarketFilterForm(request.GET, counties=_counties())


class _MarketPaginator(Paginator):
    """Pages of listing ids whose count is kept in the cache under the
    market's version and the filters: the count reads every open listing
    that matches the filters, a page only its own rows."""

    def __init__(self, ids, key: str):
        super().__init__(ids, PER_PAGE)
        self.key = key

    @cached_property
    def count(self) -> int:
        return _cached(COUNT_KEY + self.key, lambda: Paginator.count.func(self))


def _filters_key(filters: dict) -> str:
    """The filters (not the sort) as a short cache key."""
    chosen = sorted((name, value) for name, value in filters.items() if name != "sort")
    return hashlib.sha256(repr(chosen).encode()).hexdigest()


def _summary(version: str) -> dict:
    """The last 12 months' settled sales and the best offer now (cached)."""
    return _cached(
        SUMMARY_KEY + version,
        lambda: {
            "months": selectors.market_months(),
            "best": selectors.best_offer(),
        },
    )


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _project_name(row: dict, prefix: str = "") -> str:
    chinese = (get_language() or "").startswith("zh")
    return row[f"{prefix}name_zh" if chinese else f"{prefix}name_en"]


def _url_prefix(name: str, example) -> str:
    """The address of ``name`` up to its one argument: rows build theirs by
    appending (a reverse per row costs more than the rest of the row)."""
    url = reverse(name, args=[example])
    return url[: url.rindex(str(example))]


# A market row. Written out here rather than in the template: 50 rows of ten
# cells through the template engine were most of the page's time (about
# 9 ms of 17). Every text is escaped (``escape``); numbers, dates and the
# listing's number need not be.
ROW_HTML = (
    '<tr data-listing="{pk}">'
    '<td data-label="{l[listing]}"><a href="{url}"><code>{number}</code></a></td>'
    '<td data-label="{l[project]}"><a href="{project_url}"><code>{code}</code> '
    "{project}</a></td>"
    '<td data-label="{l[county]}">{county}</td>'
    '<td data-label="{l[ecosystem]}">{ecosystem}</td>'
    '<td data-label="{l[vintage]}" class="num">{vintage}</td>'
    '<td data-label="{l[price]}" class="num">{price}</td>'
    '<td data-label="{l[left]}" class="num">{left}</td>'
    '<td data-label="{l[lot]}" class="num">{lot}</td>'
    '<td data-label="{l[until]}">{until}</td>'
    '<td data-label="{l[seller]}">{seller}</td>'
    "</tr>"
)


def _column_labels() -> dict:
    return {
        "listing": _("Listing"),
        "project": _("Project"),
        "county": _("County or district"),
        "ecosystem": _("Ecosystem"),
        "vintage": _("Vintage"),
        "price": _("Price (CNY per t CO2e)"),
        "left": pgettext("quantity remaining", "Left (t CO2e)"),
        "lot": _("Minimum lot (t CO2e)"),
        "until": _("Open until"),
        "seller": _("Seller"),
    }


def _rows_html(rows: list[dict], labels: dict) -> list[str]:
    listing_url = _url_prefix("public:market-listing", 1)
    project_url = _url_prefix("registry:project-detail", "CODE")
    no_end = format_html('<span class="muted">{}</span>', _("until withdrawn"))
    not_named = format_html(
        '<span class="muted">{}</span>', _("holder not named publicly")
    )
    escaped = {key: escape(text) for key, text in labels.items()}
    ecosystems = {key: escape(text) for key, text in ECOSYSTEM_LABELS.items()}
    return [
        # Safe: every text in it is escaped, above or here.
        mark_safe(
            ROW_HTML.format(
                l=escaped,
                pk=row["pk"],
                url=f"{listing_url}{row['pk']}/",
                number=row["number"],
                project_url=escape(f"{project_url}{row['project_code']}/"),
                code=escape(row["project_code"]),
                project=escape(row["project_name"]),
                county=escape(row["county_name"]),
                ecosystem=ecosystems.get(row["ecosystem"], ""),
                vintage=row["vintage"],
                price=row["price"],
                left=row["quantity_left"],
                lot=row["minimum_lot"],
                until=row["ends_on"].isoformat() if row["ends_on"] else no_end,
                seller=escape(row["seller"]) if row["seller"] else not_named,
            )
        )
        for row in rows
    ]


def _errors(form: MarketFilterForm) -> list[str]:
    return [
        f"{form.fields[name].label}: {message}" if name in form.fields else message
        for name, messages in form.errors.items()
        for message in messages
    ]


@require_GET
def market(request):
    """The market page. Its content is the same for every visitor of one
    language and query while the market is unchanged, so it is rendered once
    per market version (and which holders are named in public) and kept; the
    page around it, with the visitor's navigation and forms, is rendered per
    request. A repeated page costs two small queries and one cache read. A
    project or organization renamed shows within PAGE_CACHE_SECONDS."""
    version = selectors.market_version()
    query = request.GET.urlencode()
    key = None
    if len(query) <= PAGE_CACHE_MAX_QUERY:
        digest = hashlib.sha256(query.encode()).hexdigest()
        holders = selectors.public_holders_version()
        key = f"{PAGE_KEY}{version}:{holders}:{get_language()}:{digest}"
        cached = cache.get(key)
        if cached is not None:
            body, status = cached
            return _market_page(request, body, status)
    body, status = _market_body(request, version)
    if key is not None:
        cache.set(key, (body, status), PAGE_CACHE_SECONDS)
    return _market_page(request, body, status)


def _market_page(request, body: str, status: int):
    return render(
        request, "public/market.html", {"body": mark_safe(body)}, status=status
    )


def _market_body(request, version: str) -> tuple[str, int]:
    form = _filter_form(request)
    filters = form.filters()
    # The count (cached), then one page's rows: the sort and the cut run on
    # the listings table, only the page's rows are joined.
    page = _MarketPaginator(
        selectors.market_listing_ids(**filters), f"{version}:{_filters_key(filters)}"
    ).get_page(request.GET.get("page"))
    labels = _column_labels()
    rows = _rows_html(
        selectors.market_page_rows(
            page.object_list, sort=filters["sort"], county_names=_county_names
        ),
        labels,
    )
    summary = _summary(version)
    best = summary["best"]
    months = summary["months"]
    charts = {
        "market": {
            "labels": [row["label"] for row in months],
            "tonnes": [row["tonnes"] for row in months],
            "price": [
                None if row["average_price"] is None else str(row["average_price"])
                for row in months
            ],
        },
        "text": {
            "tonnes": _("Volume (t CO2e)"),
            "price": _("Average price (CNY per t CO2e)"),
        },
    }
    query = _query_without_page(request)
    body = render_to_string(
        "public/market_body.html",
        {
            "form": form,
            "filter_errors": _errors(form),
            "page": page,
            "rows": rows,
            "labels": labels,
            "query": query,
            "csv_url": f"{reverse('public:market-csv')}?{query}",
            "map_url": f"{reverse('public:market-map')}?{query}",
            "project_filter": filters["project"],
            "months": months,
            "best": best,
            "best_project_name": _project_name(best, "project_") if best else "",
            "charts": charts,
        },
        request=request,
    )
    return body, 400 if form.errors else 200


@require_GET
def market_csv(request):
    form = _filter_form(request)
    filters = form.filters()
    if form.errors:
        return render(
            request,
            "public/missing.html",
            {"message": " ".join(_errors(form))},
            status=400,
        )
    listing_url = _url_prefix("public:market-listing", 1)

    def rows():
        for row in selectors.market_rows(selectors.market_listings(**filters)):
            yield [
                row["number"],
                request.build_absolute_uri(f"{listing_url}{row['pk']}/"),
                row["project_code"],
                row["project_name_zh"],
                row["project_name_en"],
                row["county_code"],
                row["county_name_zh"],
                row["county_name_en"],
                row["ecosystem"],
                row["vintage"],
                row["serial_label"],
                row["price"],
                row["quantity_left"],
                row["quantity_listed"],
                row["minimum_lot"],
                row["ends_on"].isoformat() if row["ends_on"] else "",
                row["account_number"],
                row["seller"],
                timezone.localtime(row["created_at"]).date().isoformat(),
            ]

    return _csv_response(
        "market-listings.csv",
        [
            "listing",
            "listing_url",
            "project",
            "project_name_zh",
            "project_name_en",
            "county_code",
            "county_name_zh",
            "county_name_en",
            "ecosystem",
            "vintage",
            "batch",
            "price_cny_per_t",
            "quantity_left_t_co2e",
            "quantity_listed_t_co2e",
            "minimum_lot_t_co2e",
            "open_until",
            "seller_account",
            "seller",
            "listed_on",
        ],
        rows(),
    )


@require_GET
def market_map(request):
    """The listed projects as GeoJSON points (one per project, at the centre
    of its bounding box) with their listings, tonnes and lowest price."""
    form = _filter_form(request)
    filters = form.filters()
    if form.errors:
        return JsonResponse({"errors": _errors(form)}, status=400)
    filters.pop("sort")
    points = _cached(
        f"{MAP_KEY}{selectors.market_version()}:{_filters_key(filters)}",
        lambda: selectors.market_map_points(**filters),
    )
    project_url = _url_prefix("registry:project-detail", "CODE")
    market_url = reverse("public:market")
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
            "properties": {
                "code": point["code"],
                "name": _project_name(point),
                "listings": point["listings"],
                "tonnes": point["tonnes"],
                "lowest_price": str(point["lowest_price"]),
                "url": f"{project_url}{point['code']}/",
                "market_url": f"{market_url}?project={point['code']}",
            },
        }
        for point in points
    ]
    return JsonResponse(
        {
            "type": "FeatureCollection",
            "features": features,
            "text": {
                "listings": _("Listings"),
                "tonnes": _("Tonnes offered"),
                "lowest": _("Lowest price (CNY per t CO2e)"),
                "show": _("Show its listings"),
            },
        }
    )


# A listing -----------------------------------------------------------------------


def _listing_state(listing: Listing, today) -> tuple[str, str]:
    """(key, text) of where the listing stands for a visitor."""
    if listing.status == Listing.Status.WITHDRAWN:
        return "closed", _("Closed: withdrawn by the seller")
    if listing.status == Listing.Status.EXPIRED:
        return "closed", _("Closed: past its end date")
    if listing.ends_on is not None and listing.ends_on < today:
        return "closed", _("Closed: past its end date")
    if listing.quantity_left == 0:
        return "sold-out", _(
            "Nothing left for now: all of it is ordered. Tonnes from an order "
            "that does not complete return to the listing."
        )
    return "open", pgettext("listing status", "Open")


def _order_url(request, listing: Listing) -> str:
    """Where a signed-in buyer orders from this listing, or "" (not signed
    in, may not buy, the seller's own organization)."""
    user = request.user
    if not user.is_authenticated:
        return ""
    if not (has_role(user, Role.BUYER) or has_role(user, Role.BUREAU_STAFF)):
        return ""
    if listing.account.organization_id in get_user_organization_ids(user=user):
        return ""
    try:
        return reverse("trading:order-create", args=[listing.pk])
    except NoReverseMatch:
        # NOTE: the order form (trading:order-create, listing pk) is being
        # written alongside this page; until its URL exists the page offers
        # no link rather than failing.
        return ""


@require_GET
def market_listing(request, pk):
    listing = get_listing(pk=pk)
    if listing is None:
        return render(
            request,
            "public/missing.html",
            {"message": _("No listing has this number.")},
            status=404,
        )
    state, state_text = _listing_state(listing, timezone.localdate())
    project = listing.batch.project
    return render(
        request,
        "public/market_listing.html",
        {
            "listing": listing,
            "batch": listing.batch,
            "project": project,
            "ecosystem": ECOSYSTEM_LABELS.get(
                project.ecosystem_focus, project.ecosystem_focus
            ),
            "seller": selectors.holder_name(listing.account),
            "state": state,
            "state_text": state_text,
            "order_url": _order_url(request, listing) if state == "open" else "",
        },
    )
