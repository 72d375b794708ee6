"""Reads for the trading ledger that more than one caller needs."""

from django.db.models import Case, Q, QuerySet, Sum, When
from django.utils import timezone

from registry.models import Account, Project
from registry.roles import Role
from registry.selectors import has_role
from trading.models import (
    Certificate,
    CreditBatch,
    CreditBlock,
    LedgerCheck,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)

# Credits still held (not retired or cancelled): spendable, on the market, or
# reserved by a request or an order.
LIVE_STATES = (
    CreditBlock.State.ACTIVE,
    CreditBlock.State.LISTED,
    CreditBlock.State.RESERVED,
)


def get_account_balance(*, account: Account) -> dict[str, int]:
    """Tonnes by block state in one account (active is what it may spend)."""
    rows = (
        CreditBlock.objects.filter(account=account)
        .values("state")
        .annotate(total=Sum("quantity"))
    )
    balance = dict.fromkeys(CreditBlock.State.values, 0)
    balance.update({row["state"]: row["total"] for row in rows})
    return balance


def get_account_balances(*, account_ids) -> dict[int, dict[str, int]]:
    """Balances of many accounts in one query: {account id: {state: tonnes}}."""
    balances = {pk: dict.fromkeys(CreditBlock.State.values, 0) for pk in account_ids}
    rows = (
        CreditBlock.objects.filter(account_id__in=list(balances))
        .values("account_id", "state")
        .annotate(total=Sum("quantity"))
    )
    for row in rows:
        balances[row["account_id"]][row["state"]] = row["total"]
    return balances


def list_account_holdings(*, account: Account):
    """Per batch: active, listed and reserved tonnes held by the account."""
    return (
        CreditBlock.objects.filter(account=account, state__in=LIVE_STATES)
        .values(
            "batch_id",
            "batch__vintage",
            "batch__project__code",
            "batch__first_serial",
            "batch__last_serial",
            "state",
        )
        .annotate(total=Sum("quantity"))
        .order_by("batch__vintage", "batch_id", "state")
    )


def list_pending_requests() -> QuerySet[TradeRequest]:
    """The review queue: pending requests, each with its market order (if it
    is one), listing and payment record joined in, for the reviewer to see
    side by side."""
    return TradeRequest.objects.filter(
        status=TradeRequest.Status.PENDING
    ).select_related(
        "from_account__organization",
        "to_account__organization",
        "initiator",
        "batch",
        "order__listing",
        "order__payment_confirmed_by",
    )


def list_entries() -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.select_related(
        "batch__project", "from_account", "to_account", "actor"
    ).order_by("-sequence")


def list_user_accounts(*, user) -> QuerySet[Account]:
    """Accounts the user may see: their organizations'; all for registry admins."""
    accounts = Account.objects.select_related("organization").order_by("number")
    if has_role(user, Role.REGISTRY_ADMIN):
        return accounts
    if not user.is_authenticated:
        return accounts.none()
    return accounts.filter(organization__memberships__user=user).distinct()


def list_spendable_accounts(*, user) -> QuerySet[Account]:
    """The holding accounts of the user's own organizations."""
    if not user.is_authenticated:
        return Account.objects.none()
    return (
        Account.objects.select_related("organization")
        .filter(organization__memberships__user=user, kind=Account.Kind.HOLDING)
        .distinct()
        .order_by("number")
    )


def list_cancellable_accounts() -> QuerySet[Account]:
    """Accounts a registry admin may cancel credits from: every holding account
    and the buffer pool (reversals are covered from it)."""
    return (
        Account.objects.select_related("organization")
        .filter(kind__in=[Account.Kind.HOLDING, Account.Kind.BUFFER_POOL])
        .order_by("number")
    )


def list_account_entries(*, account: Account) -> QuerySet[LedgerEntry]:
    return list_entries().filter(Q(from_account=account) | Q(to_account=account))


def list_account_requests(*, account: Account) -> QuerySet[TradeRequest]:
    return TradeRequest.objects.filter(
        Q(from_account=account) | Q(to_account=account)
    ).select_related("from_account", "to_account", "initiator")


def list_visible_requests(*, user) -> QuerySet[TradeRequest]:
    """Trade requests the user may see: all for registry admins; otherwise
    those that move credits out of or into their organizations' accounts (as
    on their account pages)."""
    requests = TradeRequest.objects.select_related(
        "from_account", "to_account", "batch"
    ).order_by("-created_at", "-pk")
    if has_role(user, Role.REGISTRY_ADMIN):
        return requests
    accounts = list_user_accounts(user=user).values("pk")
    return requests.filter(Q(from_account__in=accounts) | Q(to_account__in=accounts))


def list_visible_entries(*, user, filters: dict) -> QuerySet[LedgerEntry]:
    """Journal entries the user may see (registry admins all; holders their
    accounts'), filtered."""
    entries = list_entries()
    if not has_role(user, Role.REGISTRY_ADMIN):
        accounts = list_user_accounts(user=user)
        entries = entries.filter(
            Q(from_account__in=accounts) | Q(to_account__in=accounts)
        )
    if filters.get("kind"):
        entries = entries.filter(kind=filters["kind"])
    if filters.get("account"):
        number = filters["account"].strip().upper()
        entries = entries.filter(
            Q(from_account__number=number) | Q(to_account__number=number)
        )
    if filters.get("batch"):
        entries = entries.filter(batch_id=filters["batch"])
    if filters.get("since"):
        entries = entries.filter(created_at__date__gte=filters["since"])
    if filters.get("until"):
        entries = entries.filter(created_at__date__lte=filters["until"])
    return entries


def get_last_ledger_check() -> LedgerCheck | None:
    return LedgerCheck.objects.first()


def list_batches() -> QuerySet[CreditBatch]:
    """Every issued batch, newest first (all are public: batches exist only for
    registered projects)."""
    return (
        CreditBatch.objects.select_related("project__owner")
        .defer("project__boundary")
        .order_by("-issued_at", "-pk")
    )


def find_issued_batch(*, project: Project, start, end) -> CreditBatch | None:
    """The project's earliest batch whose monitoring period shares a day with
    ``start``-``end``: a period is credited once (no double issuance)."""
    return (
        CreditBatch.objects.filter(
            project=project, monitoring_start__lte=end, monitoring_end__gte=start
        )
        .order_by("monitoring_start")
        .first()
    )


def get_batch(*, pk: int) -> CreditBatch | None:
    """A batch with its project, for its public page (batches exist only for
    registered projects, so every one is public)."""
    return (
        CreditBatch.objects.select_related("project__owner", "project__county")
        .defer("project__boundary", "project__county__boundary")
        .filter(pk=pk)
        .first()
    )


def get_batch_whereabouts(*, batch: CreditBatch) -> dict[str, int]:
    """Where a batch's credits are now, in tonnes, from one grouped query:
    ``held`` (active in holders' accounts), ``buffer`` (active in the buffer
    pool), ``listed`` (on the market), ``reserved``, ``retired``, ``cancelled``;
    they add up to the batch."""
    rows = (
        CreditBlock.objects.filter(batch=batch)
        .values("state", "account__kind")
        .annotate(total=Sum("quantity"))
        .order_by()
    )
    totals = dict.fromkeys(
        ("held", "buffer", "listed", "reserved", "retired", "cancelled"), 0
    )
    for row in rows:
        state = row["state"]
        if state == CreditBlock.State.ACTIVE:
            key = (
                "buffer" if row["account__kind"] == Account.Kind.BUFFER_POOL else "held"
            )
        else:
            key = state
        totals[key] += row["total"]
    return totals


def list_holdings(*, accounts) -> list[dict]:
    """Active, listed and reserved tonnes per account, batch and state, in one
    query."""
    return list(
        CreditBlock.objects.filter(account__in=accounts, state__in=LIVE_STATES)
        .values(
            "account__number",
            "batch_id",
            "batch__vintage",
            "batch__project__code",
            "state",
        )
        .annotate(total=Sum("quantity"))
        .order_by("account__number", "batch__vintage", "batch_id", "state")
    )


def list_pending_requests_from(*, accounts) -> QuerySet[TradeRequest]:
    return (
        TradeRequest.objects.filter(
            from_account__in=accounts, status=TradeRequest.Status.PENDING
        )
        .select_related("from_account", "to_account")
        .order_by("-created_at", "-pk")
    )


def list_account_certificates(*, accounts) -> QuerySet[Certificate]:
    """Certificates of retirements from these accounts, newest first."""
    return (
        Certificate.objects.filter(account__in=accounts)
        .select_related("account")
        .order_by("-retired_at", "-pk")
    )


# The market ----------------------------------------------------------------------

# The public market's sort orders: key -> ordering (a unique last key keeps
# pages stable).
LISTING_ORDERINGS = {
    "price": ("price_per_tonne", "pk"),
    "-price": ("-price_per_tonne", "pk"),
    "quantity": ("quantity_left", "pk"),
    "-quantity": ("-quantity_left", "pk"),
    "vintage": ("batch__vintage", "price_per_tonne", "pk"),
    "-vintage": ("-batch__vintage", "price_per_tonne", "pk"),
    "newest": ("-created_at", "-pk"),
}


def list_open_listings(*, today=None) -> QuerySet[Listing]:
    """What the market offers now: open listings with tonnes left, not past
    their end date (the expiry task closes those a little later), with what
    a market row shows joined in."""
    today = today or timezone.localdate()
    return (
        Listing.objects.filter(status=Listing.Status.OPEN, quantity_left__gt=0)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=today))
        .select_related("batch__project__county", "account__organization")
        .defer(
            "batch__project__boundary",
            "batch__project__county__boundary",
        )
    )


def filter_listings(
    listings: QuerySet[Listing],
    *,
    county=None,
    ecosystem: str = "",
    vintage: int | None = None,
    price_min=None,
    price_max=None,
    sort: str = "price",
) -> QuerySet[Listing]:
    """The market's filters (each optional) and sort order."""
    if county is not None:
        listings = listings.filter(batch__project__county=county)
    if ecosystem:
        listings = listings.filter(batch__project__ecosystem_focus=ecosystem)
    if vintage:
        listings = listings.filter(batch__vintage=vintage)
    if price_min is not None:
        listings = listings.filter(price_per_tonne__gte=price_min)
    if price_max is not None:
        listings = listings.filter(price_per_tonne__lte=price_max)
    return listings.order_by(*LISTING_ORDERINGS.get(sort, LISTING_ORDERINGS["price"]))


def get_listing(*, pk: int) -> Listing | None:
    """Any listing (open or closed) with its batch, project and seller."""
    return (
        Listing.objects.select_related(
            "batch__project__county", "account__organization", "created_by"
        )
        .defer("batch__project__boundary", "batch__project__county__boundary")
        .filter(pk=pk)
        .first()
    )


def list_project_listings(*, project: Project) -> QuerySet[Listing]:
    """A project's open listings, cheapest first (its public page)."""
    return (
        list_open_listings()
        .filter(batch__project=project)
        .order_by("price_per_tonne", "pk")
    )


def list_seller_listings(*, accounts) -> QuerySet[Listing]:
    """Every listing (open first, then newest) of these accounts."""
    return (
        Listing.objects.filter(account__in=accounts)
        .select_related("batch__project__county", "account__organization")
        .defer("batch__project__boundary", "batch__project__county__boundary")
        .order_by(
            Case(When(status=Listing.Status.OPEN, then=0), default=1),
            "-created_at",
            "-pk",
        )
    )


def _orders() -> QuerySet[Order]:
    return Order.objects.select_related(
        "listing__batch__project",
        "listing__account__organization",
        "trade_request__to_account__organization",
        "trade_request__initiator",
        "payment_confirmed_by",
        "retirement_request__certificate",
    ).defer("listing__batch__project__boundary")


def list_visible_orders(*, user) -> QuerySet[Order]:
    """Orders the user may see: all for registry admins; otherwise those
    their organizations placed (as buyer) or received (as seller)."""
    orders = _orders().order_by("-pk")
    if has_role(user, Role.REGISTRY_ADMIN):
        return orders
    accounts = list_user_accounts(user=user).values("pk")
    return orders.filter(
        Q(trade_request__to_account__in=accounts) | Q(listing__account__in=accounts)
    )


def list_listing_orders(*, listing: Listing) -> QuerySet[Order]:
    return _orders().filter(listing=listing).order_by("-pk")


def get_order_for_request(*, request: TradeRequest) -> Order | None:
    """The order a trade request carries, if it is one (the review page)."""
    return _orders().filter(trade_request=request).first()


def list_listable_batches(*, accounts) -> QuerySet[CreditBatch]:
    """Batches of which these accounts hold active credits, with the tonnes
    (``active_tonnes``): what a seller may list."""
    return (
        CreditBatch.objects.filter(
            blocks__account__in=accounts, blocks__state=CreditBlock.State.ACTIVE
        )
        .annotate(active_tonnes=Sum("blocks__quantity"))
        .select_related("project")
        .defer("project__boundary")
        .order_by("vintage", "pk")
    )
