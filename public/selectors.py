"""Reads for the public registry. This layer sits above the apps (it may read
estimation and trading together, which trading may not); it writes nothing.

Holder privacy: a holding account's organization is named only when the account
is marked public (``Account.is_public``); a beneficiary only when the retirement
asked for it (``Certificate.beneficiary_public``).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Min, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import ExtractYear, TruncMonth
from django.utils import timezone

from common.quantities import money
from estimation.models import EcosystemResult, EstimationRun, Verification
from public import figures
from registry.models import Account, BilingualNameMixin, Organization, Project
from registry.selectors import list_counties
from trading import serials
from trading.models import (
    Certificate,
    CreditBatch,
    CreditBlock,
    JournalAnchor,
    LedgerEntry,
    LedgerHead,
    Listing,
    serial_label,
)
from trading.selectors import (
    LISTING_ORDERINGS,
    filter_listings,
    list_open_listings,
)

SEARCH_LIMIT = 20


def holder_name(account: Account | None) -> str:
    """The organization's name where the holder made it public, else ""."""
    if account is None:
        return ""
    return _public_name(account.kind, account.is_public, account.organization)


def _public_name(kind: str, is_public: bool, organization) -> str:
    """The privacy rule of ``holder_name``, for rows read as values:
    ``organization`` is anything with a ``display_name``."""
    if kind != Account.Kind.HOLDING or is_public:
        return organization.display_name
    return ""


# Certificates -----------------------------------------------------------------


def get_certificate(*, token: str, with_holder: bool = True) -> Certificate | None:
    """The certificate at this public address; its holding account and
    organization too unless ``with_holder`` is False (the verification page,
    which must stay cheap, does not show them)."""
    if not figures.is_certificate_token(token):
        return None
    certificates = Certificate.objects.filter(token=token).order_by()
    if with_holder:
        certificates = certificates.select_related("account__organization")
    return next(iter(certificates[:1]), None)


def get_certificate_by_number(*, number: str) -> Certificate | None:
    number = (number or "").strip().upper()
    if not figures.is_certificate_number(number):
        return None
    return Certificate.objects.filter(number=number).first()


def get_batch_ecosystems(*, batch_ids) -> dict[int, list[dict]]:
    """Per batch: the ecosystems of the verified estimate it was issued from,
    largest sink first, with their share of its sink. One query."""
    rows = (
        EcosystemResult.objects.filter(
            run__verifications__batch_id__in=list(batch_ids),
            run__verifications__status=Verification.Status.ISSUED,
        )
        .values_list(
            "run__verifications__batch_id",
            "ecosystem",
            "area_ha",
            "sink_t_co2e_per_year",
        )
        .order_by()
    )
    per_batch: dict[int, list] = {}
    for batch_id, ecosystem, area_ha, sink in rows:
        per_batch.setdefault(batch_id, []).append((ecosystem, area_ha, sink))
    return {
        batch_id: [
            {"ecosystem": ecosystem, "area_ha": area, "sink": sink, "share": share}
            for ecosystem, area, sink, share in figures.rank_by_total(batch_rows)
            if sink > 0
        ]
        for batch_id, batch_rows in per_batch.items()
    }


def certificate_ecosystems(entries: list[LedgerEntry]) -> list[dict]:
    """The ecosystems behind a certificate's credits, as ``{"ecosystem", "share"}``
    weighted by the tonnes retired from each batch; a batch issued without an
    estimate counts as its project's ecosystem focus."""
    ecosystems = get_batch_ecosystems(batch_ids={entry.batch_id for entry in entries})
    rows = []
    for entry in entries:
        shares = ecosystems.get(entry.batch_id) or [
            {"ecosystem": entry.batch.project.ecosystem_focus, "share": Decimal(1)}
        ]
        rows.extend(
            (item["ecosystem"], Decimal(0), item["share"] * entry.quantity)
            for item in shares
        )
    return [
        {"ecosystem": ecosystem, "share": share}
        for ecosystem, _area, _tonnes, share in figures.rank_by_total(rows)
    ]


# Search and lookup --------------------------------------------------------------


def _public_projects() -> QuerySet[Project]:
    return (
        Project.objects.filter(status__in=Project.PUBLIC_STATUSES)
        .select_related("county")
        .defer("boundary", "county__boundary")
    )


def search(*, query: str) -> dict:
    """Projects, batches and certificates that match the words typed: a few
    queries, each limited; the ORM passes the text as a parameter."""
    text = query.strip()
    serial = serials.parse_serial(text)
    projects = _public_projects().filter(
        Q(code__icontains=text)
        | Q(name_zh__icontains=text)
        | Q(name_en__icontains=text)
    )
    batches = list_batches()
    if serial is not None:
        batches = batches.filter(first_serial__lte=serial, last_serial__gte=serial)
    else:
        batches = batches.filter(
            Q(project__code__icontains=text)
            | Q(project__name_zh__icontains=text)
            | Q(project__name_en__icontains=text)
        )
    certificates = list_retirements()
    if figures.is_certificate_number(text):
        certificates = certificates.filter(number=text.upper())
    else:
        certificates = certificates.filter(
            Q(number__icontains=text)
            | Q(beneficiary__icontains=text, beneficiary_public=True)
        )
    return {
        "serial": serial,
        "projects": list(projects.order_by("code")[:SEARCH_LIMIT]),
        "batches": list(batches[:SEARCH_LIMIT]),
        "certificates": list(certificates[:SEARCH_LIMIT]),
    }


@dataclass
class SerialLookup:
    serial: int
    batch: CreditBatch
    block: CreditBlock | None
    holder: str
    certificate: Certificate | None


def lookup_serial(*, serial: int) -> SerialLookup | None:
    """Which batch a serial belongs to, its state and holder now, and its
    certificate if it is retired. At most three indexed queries."""
    batch = (
        CreditBatch.objects.select_related("project")
        .defer("project__boundary")
        .filter(first_serial__lte=serial, last_serial__gte=serial)
        .order_by("-first_serial")
        .first()
    )
    if batch is None:
        return None
    block = (
        CreditBlock.objects.select_related("account__organization")
        .filter(batch=batch, first_serial__lte=serial, last_serial__gte=serial)
        .first()
    )
    certificate = None
    if block is not None and block.state == CreditBlock.State.RETIRED:
        certificate = Certificate.objects.filter(
            trade_request__ledger_entries__kind=LedgerEntry.Kind.RETIRE,
            trade_request__ledger_entries__batch=batch,
            trade_request__ledger_entries__first_serial__lte=serial,
            trade_request__ledger_entries__last_serial__gte=serial,
        ).first()
    return SerialLookup(
        serial=serial,
        batch=batch,
        block=block,
        holder=holder_name(block.account if block else None),
        certificate=certificate,
    )


# Lists ------------------------------------------------------------------------


def list_batches() -> QuerySet[CreditBatch]:
    return (
        CreditBatch.objects.select_related("project")
        .defer("project__boundary")
        .order_by("-issued_at", "-pk")
    )


def list_retirements() -> QuerySet[Certificate]:
    """Certificates, newest first, each with ``retire_entries`` (and their batch
    and project) prefetched: one query for the page, one for the entries."""
    entries = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RETIRE)
        .select_related("batch__project")
        .defer("batch__project__boundary")
        .order_by("sequence")
    )
    return (
        Certificate.objects.select_related("trade_request")
        .prefetch_related(
            Prefetch(
                "trade_request__ledger_entries",
                queryset=entries,
                to_attr="retire_entries",
            )
        )
        .order_by("-retired_at", "-pk")
    )


def list_buffer_pool() -> list[dict]:
    """Per project with credits: tonnes withheld into the buffer pool, still
    there (balance), reserved by a pending cancellation, and used (cancelled to
    cover reversals). Two grouped queries."""
    withheld = {
        row["project"]: row
        for row in CreditBatch.objects.values(
            "project", "project__code", "project__name_zh", "project__name_en"
        )
        .annotate(withheld=Sum("buffer_quantity"))
        .order_by()
    }
    held: dict[tuple[int, str], int] = {}
    for row in (
        CreditBlock.objects.filter(account__kind=Account.Kind.BUFFER_POOL)
        .values("batch__project", "state")
        .annotate(total=Sum("quantity"))
        .order_by()
    ):
        held[(row["batch__project"], row["state"])] = row["total"]
    rows = []
    for project_id, row in withheld.items():
        balance = held.get((project_id, CreditBlock.State.ACTIVE), 0)
        reserved = held.get((project_id, CreditBlock.State.RESERVED), 0)
        rows.append(
            {
                "code": row["project__code"],
                "name_zh": row["project__name_zh"],
                "name_en": row["project__name_en"],
                "withheld": row["withheld"],
                "balance": balance,
                "reserved": reserved,
                "used": row["withheld"] - balance - reserved,
            }
        )
    return sorted(rows, key=lambda row: row["code"] or "")


# Statistics -------------------------------------------------------------------


def credits_by_year() -> list[dict]:
    """Tonnes issued and retired per calendar year (registry time zone)."""
    issued = dict(
        CreditBatch.objects.annotate(year=ExtractYear("issued_at"))
        .values("year")
        .annotate(total=Sum("quantity"))
        .values_list("year", "total")
        .order_by()
    )
    retired = dict(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RETIRE)
        .annotate(year=ExtractYear("created_at"))
        .values("year")
        .annotate(total=Sum("quantity"))
        .values_list("year", "total")
        .order_by()
    )
    return [
        {"year": year, "issued": issued.get(year, 0), "retired": retired.get(year, 0)}
        for year in sorted(set(issued) | set(retired))
    ]


def sink_by_ecosystem() -> list[dict]:
    """Annual sink per ecosystem across registered projects, each project
    counted by its latest successful estimate: the study's ranking, live."""
    latest_runs = (
        EstimationRun.objects.filter(
            project__status=Project.Status.REGISTERED,
            status=EstimationRun.Status.SUCCEEDED,
        )
        .order_by("project_id", "-created_at", "-pk")
        .values_list("project_id", "pk")
    )
    chosen: dict[int, int] = {}
    for project_id, run_id in latest_runs:
        chosen.setdefault(project_id, run_id)
    rows = EcosystemResult.objects.filter(run_id__in=list(chosen.values())).values_list(
        "ecosystem", "area_ha", "sink_t_co2e_per_year"
    )
    return [
        {"ecosystem": ecosystem, "area_ha": area, "sink": sink, "share": share}
        for ecosystem, area, sink, share in figures.rank_by_total(rows)
    ]


def _settled_transfers(since: datetime | None = None) -> QuerySet[LedgerEntry]:
    """Settled sales: the journal's transfer entries with a price. A market
    order settles as transfer entries at its price; one retired on delivery
    then adds reserve and retire entries without a price, so each sale counts
    once (the order's own 'order' entries carry no price either)."""
    entries = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.TRANSFER, price_per_tonne__isnull=False
    )
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    return entries


def transfers_by_month(*, since: datetime | None = None) -> list[dict]:
    """Settled sales per calendar month (registry time zone): tonnes and the
    volume-weighted average price; from ``since`` on if given."""
    rows = (
        _settled_transfers(since)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "price_per_tonne")
        .annotate(total=Sum("quantity"))
        .values_list("month", "price_per_tonne", "total")
        .order_by()
    )
    return [
        {"month": month, "tonnes": tonnes, "average_price": price}
        for month, tonnes, price in figures.volume_and_average_price(rows)
    ]


def transfers_by_vintage() -> list[dict]:
    rows = (
        _settled_transfers()
        .values("batch__vintage", "price_per_tonne")
        .annotate(total=Sum("quantity"))
        .values_list("batch__vintage", "price_per_tonne", "total")
        .order_by()
    )
    return [
        {"vintage": vintage, "tonnes": tonnes, "average_price": price}
        for vintage, tonnes, price in figures.volume_and_average_price(rows)
    ]


def transfers_by_ecosystem() -> list[dict]:
    """Settled sales per ecosystem, as the sold batch's project declares its
    focus (``Project.ecosystem_focus``): tonnes and the volume-weighted average
    price, in the order of ``Project.Ecosystem``."""
    rows = (
        _settled_transfers()
        .values("batch__project__ecosystem_focus", "price_per_tonne")
        .annotate(total=Sum("quantity"))
        .values_list("batch__project__ecosystem_focus", "price_per_tonne", "total")
        .order_by()
    )
    order = {value: index for index, value in enumerate(Project.Ecosystem.values)}
    found = figures.volume_and_average_price(rows)
    return [
        {"ecosystem": ecosystem, "tonnes": tonnes, "average_price": price}
        for ecosystem, tonnes, price in sorted(
            found, key=lambda row: (order.get(row[0], len(order)), row[0])
        )
    ]


def list_published_heads() -> QuerySet[JournalAnchor]:
    return JournalAnchor.objects.order_by("-sequence", "-published_at")


def get_published_head(*, pk: int | None = None) -> JournalAnchor | None:
    """One published head by id, or the latest one (pk None)."""
    heads = list_published_heads()
    return heads.first() if pk is None else heads.filter(pk=pk).first()


# The market ---------------------------------------------------------------------


def market_listings(
    *, county: str = "", project: str = "", today=None, **filters
) -> QuerySet[Listing]:
    """The open listings the public market shows, filtered and sorted
    (``trading.selectors.filter_listings``; ``county``: a county's division
    code; ``project``: a project's code)."""
    listings = filter_listings(list_open_listings(today=today), **filters)
    if county:
        listings = listings.filter(batch__project__county__adcode=county)
    if project:
        listings = listings.filter(batch__project__code=project)
    return listings


def market_version() -> str:
    """What the market's cached figures are read at: the journal's head and
    today's date. Every change to what the market shows appends to the
    journal (a listing, an order, a return, a withdrawal or expiry with
    tonnes left, a settlement) or is a new day (end dates), so a figure kept
    under this version is never stale. One primary-key read."""
    head = LedgerHead.objects.filter(pk=1).values_list("last_hash", flat=True)
    return f"{next(iter(head), 'empty')}:{timezone.localdate().isoformat()}"


def public_holders_version() -> str:
    """Which holding accounts name their holder in public, as a short
    fingerprint (how many, and the sum of their ids): it changes whenever an
    account is made public or private, so a market page kept under it never
    shows a name its holder has withdrawn. One aggregate over the accounts."""
    row = Account.objects.filter(is_public=True).aggregate(
        count=Count("pk"), ids=Sum("pk")
    )
    return f"{row['count']}:{row['ids'] or 0}"


def market_listing_ids(**filters) -> QuerySet:
    """The ids of ``market_listings`` in their order: what a page of the
    market is cut from (the count and the page read the listings table and
    only the tables the filters and the sort need)."""
    return market_listings(**filters).values_list("pk", flat=True)


# What a market row shows, read as values: no model instances for a page of
# 50 rows and their related objects. A page joins the batch, the project and
# the account only (planning the query with the county and the organization
# too took longer than running it); their names come from the caller's maps.
_PAGE_FIELDS = {
    "pk": "pk",
    "price": "price_per_tonne",
    "quantity_left": "quantity_left",
    "quantity_listed": "quantity_listed",
    "minimum_lot": "minimum_lot",
    "ends_on": "ends_on",
    "created_at": "created_at",
    "vintage": "batch__vintage",
    "first_serial": "batch__first_serial",
    "last_serial": "batch__last_serial",
    "batch_id": "batch_id",
    "project_code": "batch__project__code",
    "project_name_zh": "batch__project__name_zh",
    "project_name_en": "batch__project__name_en",
    "ecosystem": "batch__project__ecosystem_focus",
    "county_id": "batch__project__county_id",
    "account_number": "account__number",
    "account_kind": "account__kind",
    "account_public": "account__is_public",
    "organization_id": "account__organization_id",
}
# The CSV reads the names with the rows.
_CSV_FIELDS = {
    **_PAGE_FIELDS,
    "county_code": "batch__project__county__adcode",
    "county_name_zh": "batch__project__county__name_zh",
    "county_name_en": "batch__project__county__name_en",
    "seller_name_zh": "account__organization__name_zh",
    "seller_name_en": "account__organization__name_en",
}


class _Names(BilingualNameMixin):
    """Two names as a model's ``display_name`` reads them."""

    def __init__(self, name_zh: str, name_en: str):
        self.name_zh, self.name_en = name_zh, name_en


def _language() -> str:
    """ "zh" where names show in Chinese now, else "en" (``BilingualNameMixin``)."""
    return "zh" if _Names("zh", "en").display_name == "zh" else "en"


def _market_row(values: dict, fields: dict, language: str) -> dict:
    row = {key: values[field] for key, field in fields.items()}
    row["number"] = listing_number(row["pk"])
    row["project_name"] = row[f"project_name_{language}"]
    return row


def _seller(row: dict, names: tuple[str, str] | None) -> str:
    """The seller's name where its account is public (``holder_name``'s
    rule), from its organization's (Chinese, English) names."""
    if names is None:
        return ""
    return _public_name(row["account_kind"], row["account_public"], _Names(*names))


def listing_number(pk: int) -> str:
    """``Listing.number`` without making a Listing."""
    return Listing.number.fget(_Numbered(pk))


class _Numbered:
    def __init__(self, pk: int):
        self.pk = pk


def market_rows(listings: QuerySet[Listing]) -> Iterator[dict]:
    """The listings as market rows (dicts: number, project and county names in
    the active language, the seller's name where public, the batch's serial
    label, ...), in their order, read in chunks (the CSV)."""
    values = listings.values(*_CSV_FIELDS.values())
    language = _language()
    for item in values.iterator(chunk_size=2000):
        row = _market_row(item, _CSV_FIELDS, language)
        row["county_name"] = row[f"county_name_{language}"]
        row["seller"] = _seller(row, (row["seller_name_zh"], row["seller_name_en"]))
        row["serial_label"] = serial_label(
            row["project_code"], row["vintage"], row["first_serial"], row["last_serial"]
        )
        yield row


def market_page_rows(
    page_ids: QuerySet, *, sort: str = "price", county_names
) -> list[dict]:
    """The market rows of one page: ``page_ids`` is a slice of
    ``market_listing_ids`` (sorted by ``sort``), read as a subquery, so the
    sort and the cut run on the listings table alone and only the page's
    rows are joined. Two queries: the rows, their sellers' names (shown only
    where the account is public). ``county_names(ids)``: {county id:
    (Chinese name, English name)}."""
    ordering = LISTING_ORDERINGS.get(sort, LISTING_ORDERINGS["price"])
    values = (
        list_open_listings()
        .filter(pk__in=page_ids)
        .order_by(*ordering)
        .values(*_PAGE_FIELDS.values())
    )
    language = _language()
    rows = [_market_row(item, _PAGE_FIELDS, language) for item in values]
    names = organization_names({row["organization_id"] for row in rows})
    counties = county_names({row["county_id"] for row in rows})
    index = 0 if language == "zh" else 1
    for row in rows:
        county = counties.get(row["county_id"])
        row["county_name"] = county[index] if county else ""
        row["seller"] = _seller(row, names.get(row["organization_id"]))
    return rows


def organization_names(ids) -> dict[int, tuple[str, str]]:
    """{organization id: (Chinese name, English name)} of these; no query
    for none."""
    if not ids:
        return {}
    organizations = Organization.objects.filter(pk__in=list(ids))
    return {
        pk: (name_zh, name_en)
        for pk, name_zh, name_en in organizations.values_list(
            "pk", "name_zh", "name_en"
        ).order_by()
    }


def market_counties() -> list[dict]:
    """The counties the market filters by: id, code and both names (no
    boundaries)."""
    return list(list_counties().values("pk", "adcode", "name_zh", "name_en"))


def best_offer(*, today=None) -> dict | None:
    """The lowest price on the market now: the cheapest open listing (the
    oldest of equals) and how many tonnes in all are offered at that price.
    Two indexed queries; None when nothing is offered."""
    listings = list_open_listings(today=today)
    best = (
        listings.order_by("price_per_tonne", "pk")
        .values(
            "pk",
            "price_per_tonne",
            "quantity_left",
            "minimum_lot",
            "batch__vintage",
            "batch__project__code",
            "batch__project__name_zh",
            "batch__project__name_en",
        )
        .first()
    )
    if best is None:
        return None
    at_price = (
        listings.filter(price_per_tonne=best["price_per_tonne"])
        .order_by()
        .aggregate(tonnes=Sum("quantity_left"), listings=Count("pk"))
    )
    return {
        "pk": best["pk"],
        "number": listing_number(best["pk"]),
        "price": best["price_per_tonne"],
        "quantity": best["quantity_left"],
        "minimum_lot": best["minimum_lot"],
        "vintage": best["batch__vintage"],
        "project_code": best["batch__project__code"],
        "project_name_zh": best["batch__project__name_zh"],
        "project_name_en": best["batch__project__name_en"],
        "tonnes_at_price": at_price["tonnes"],
        "listings_at_price": at_price["listings"],
    }


def market_months(*, count: int = 12, now=None) -> list[dict]:
    """Settled sales in each of the last ``count`` calendar months (this one
    included), oldest first; a month without sales has 0 t and no price."""
    today = timezone.localdate(now)
    months = figures.recent_months(today.year, today.month, count)
    first_year, first_month = months[0]
    since = datetime(first_year, first_month, 1, tzinfo=timezone.get_current_timezone())
    found = {
        (row["month"].year, row["month"].month): row
        for row in transfers_by_month(since=since)
    }
    return [
        {
            "year": year,
            "month": month,
            "label": f"{year}-{month:02d}",
            "tonnes": found.get((year, month), {}).get("tonnes", 0),
            "average_price": found.get((year, month), {}).get("average_price"),
        }
        for year, month in months
    ]


def market_map_points(**filters) -> list[dict]:
    """One point per project with listings on the market (filtered as the
    list is): the centre of its bounding box, how many listings, the tonnes
    offered and the lowest price. One grouped query, no geometry: the map
    stays small however many listings there are."""
    filters.pop("sort", None)
    rows = (
        market_listings(**filters)
        .order_by()
        .values(
            "batch__project__code",
            "batch__project__name_zh",
            "batch__project__name_en",
            "batch__project__bbox_west",
            "batch__project__bbox_south",
            "batch__project__bbox_east",
            "batch__project__bbox_north",
        )
        .annotate(
            listings=Count("pk"),
            tonnes=Sum("quantity_left"),
            lowest=Min("price_per_tonne"),
        )
    )
    points = []
    for row in rows:
        project = {
            key.removeprefix("batch__project__"): value
            for key, value in row.items()
            if key.startswith("batch__project__")
        }
        points.append(
            {
                "code": project["code"],
                "name_zh": project["name_zh"],
                "name_en": project["name_en"],
                "lon": (project["bbox_west"] + project["bbox_east"]) / 2,
                "lat": (project["bbox_south"] + project["bbox_north"]) / 2,
                "listings": row["listings"],
                "tonnes": row["tonnes"],
                # An aggregate comes back unscaled on SQLite (80, not 80.00).
                "lowest_price": money(row["lowest"]),
            }
        )
    return sorted(points, key=lambda point: point["code"] or "")
