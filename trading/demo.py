"""Demo trades on top of the demo issuance: the Bijie forestry bureau sells
Baili credits to Guizhou Lvzhu, which retires part of them for itself, so a new
user finds a settled transfer, statistics and a certificate with a Chinese
beneficiary. Idempotent: fixed idempotency keys, each request settled once."""

from decimal import Decimal

from django.db.models import Sum

from registry.models import Account, Organization, User
from trading import services
from trading.models import Certificate, TradeRequest

SELLER_USCC = "11520500MB1725930N"  # Bijie Forestry Bureau (registry.demo)
BUYER_USCC = "91520100MA6H3QW5LD"  # Guizhou Lvzhu Construction Group
TRANSFER_TONNES = 200
RETIRED_TONNES = 120
BENEFICIARY = "贵州绿筑建设集团有限公司"


def _settle(request: TradeRequest, admin: User) -> None:
    if request.status == TradeRequest.Status.PENDING:
        services.approve_request(actor=admin, request=request)


def load_demo_retirement() -> Certificate | None:
    """Settle the demo transfer and retirement; return the certificate (None
    when the seller has no credits to sell, e.g. issuance was skipped)."""
    admin = User.objects.get(username="registry_admin_demo")
    seller = Account.objects.get(
        organization=Organization.objects.get(uscc=SELLER_USCC), kind="holding"
    )
    buyer = Account.objects.get(
        organization=Organization.objects.get(uscc=BUYER_USCC), kind="holding"
    )
    existing = Certificate.objects.filter(
        trade_request__initiator__username="buyer_demo",
        trade_request__idempotency_key="demo-retirement-1",
    ).first()
    if existing is not None:
        return existing
    available = (
        seller.blocks.filter(state="active").aggregate(total=Sum("quantity"))["total"]
        or 0
    )
    if available < TRANSFER_TONNES:
        return None
    transfer = services.request_transfer(
        actor=User.objects.get(username="bureau_demo"),
        from_account=seller,
        to_account=buyer,
        quantity=TRANSFER_TONNES,
        price_per_tonne=Decimal("95.70"),
        idempotency_key="demo-transfer-1",
        note="演示交易。/ Demo sale.",
    )
    _settle(transfer, admin)
    retirement = services.request_retirement(
        actor=User.objects.get(username="buyer_demo"),
        from_account=buyer,
        quantity=RETIRED_TONNES,
        beneficiary=BENEFICIARY,
        purpose=TradeRequest.Purpose.VOLUNTARY,
        reporting_year=2025,
        idempotency_key="demo-retirement-1",
        note="演示：2025 年办公碳中和。/ Demo: carbon-neutral offices in 2025.",
    )
    _settle(retirement, admin)
    return Certificate.objects.get(trade_request=retirement)


# The market: what the demo's sellers offer, so a new user finds listings.
# (seller's username, seller's USCC, project name_en, tonnes, price, lot, key)
DEMO_LISTINGS = (
    (
        "bureau_demo",
        SELLER_USCC,
        "Baili Azalea Forest Carbon Sink Project",
        120,
        Decimal("98.00"),
        10,
        "demo-listing-baili-1",
        "百里杜鹃林区 2025 年度森林碳汇，可开具增值税发票。/ Baili forest "
        "credits of 2025; VAT invoice available.",
    ),
)


def load_demo_market() -> list:
    """List the demo sellers' credits on the market (idempotent: fixed keys;
    skipped when the seller holds too few active credits of the project)."""
    from trading import market
    from trading.models import CreditBatch, Listing

    listings = []
    for username, uscc, project, tonnes, price, lot, key, note in DEMO_LISTINGS:
        seller = User.objects.get(username=username)
        account = Account.objects.get(
            organization=Organization.objects.get(uscc=uscc), kind="holding"
        )
        existing = Listing.objects.filter(created_by=seller, idempotency_key=key)
        if existing.exists():
            listings.append(existing.get())
            continue
        batch = (
            CreditBatch.objects.filter(
                project__name_en=project,
                blocks__account=account,
                blocks__state="active",
            )
            .annotate(active=Sum("blocks__quantity"))
            .filter(active__gte=tonnes)
            .order_by("pk")
            .first()
        )
        if batch is None:
            continue
        listings.append(
            market.create_listing(
                actor=seller,
                account=account,
                batch=batch,
                quantity=tonnes,
                price_per_tonne=price,
                minimum_lot=lot,
                note=note,
                idempotency_key=key,
            )
        )
    return listings
