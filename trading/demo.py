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
