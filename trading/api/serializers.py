"""Trading serializers: shapes only; ``trading.services`` decides."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import AmountField, PriceField
from common import quantities
from registry.models import Account, Project
from trading.market import MAX_NOTE_LENGTH
from trading.models import (
    Certificate,
    CreditBatch,
    CreditBlock,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)
from trading.selectors import LISTING_ORDERINGS


class BalanceSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    listed = serializers.IntegerField(help_text="Offered on the market.")
    reserved = serializers.IntegerField()
    retired = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class AccountSerializer(serializers.ModelSerializer):
    organization_name_zh = serializers.CharField(source="organization.name_zh")
    organization_name_en = serializers.CharField(source="organization.name_en")
    balance = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = [
            "id",
            "number",
            "kind",
            "organization",
            "organization_name_zh",
            "organization_name_en",
            "is_public",
            "created_at",
            "balance",
        ]

    def get_balance(self, account) -> BalanceSerializer:
        """Tonnes by state; active is what the account may spend."""
        return self.context["balances"][account.pk]


class HoldingSerializer(serializers.Serializer):
    batch = serializers.IntegerField(source="batch_id")
    project = serializers.CharField(source="batch__project__code")
    vintage = serializers.IntegerField(source="batch__vintage")
    batch_first_serial = serializers.IntegerField(source="batch__first_serial")
    batch_last_serial = serializers.IntegerField(source="batch__last_serial")
    state = serializers.ChoiceField(choices=CreditBlock.State.choices)
    quantity = serializers.IntegerField(source="total")


class BatchSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="code", read_only=True)
    serial_label = serializers.CharField(read_only=True)

    class Meta:
        model = CreditBatch
        fields = [
            "id",
            "serial_label",
            "project",
            "vintage",
            "monitoring_start",
            "monitoring_end",
            "quantity",
            "buffer_quantity",
            "first_serial",
            "last_serial",
            "source",
            "issued_at",
        ]


class WhereaboutsSerializer(serializers.Serializer):
    held = serializers.IntegerField()
    buffer = serializers.IntegerField()
    listed = serializers.IntegerField(help_text="Offered on the market.")
    reserved = serializers.IntegerField()
    retired = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class BatchDetailSerializer(BatchSerializer):
    whereabouts = serializers.SerializerMethodField()

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "whereabouts"]

    def get_whereabouts(self, batch) -> WhereaboutsSerializer:
        """Where the batch's tonnes are now; they add up to its quantity."""
        return self.context["whereabouts"]


class PaymentSerializer(serializers.Serializer):
    """The seller's record that the buyer's money arrived (the registry never
    holds the money)."""

    amount = serializers.DecimalField(
        source="payment_amount",
        max_digits=quantities.MAX_AMOUNT_DIGITS,
        decimal_places=2,
    )
    paid_on = serializers.DateField(source="payment_date")
    reference = serializers.CharField(source="payment_reference")
    confirmed_by = serializers.CharField(source="payment_confirmed_by.username")
    confirmed_at = serializers.DateTimeField(source="payment_confirmed_at")


class _PaymentMixin(serializers.Serializer):
    payment = serializers.SerializerMethodField()

    @extend_schema_field(PaymentSerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict | None:
        """Null until the seller confirms the payment."""
        if order.payment_confirmed_at is None:
            return None
        return PaymentSerializer(order).data


class TradeRequestOrderSerializer(_PaymentMixin, serializers.ModelSerializer):
    """The market order a trade request carries, for its reviewer."""

    number = serializers.CharField(read_only=True)
    listing_number = serializers.CharField(source="listing.number", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "listing",
            "listing_number",
            "amount",
            "retire_on_delivery",
            "payment",
        ]


class TradeRequestSerializer(serializers.ModelSerializer):
    from_account = serializers.SlugRelatedField(slug_field="number", read_only=True)
    to_account = serializers.SlugRelatedField(slug_field="number", read_only=True)
    order = TradeRequestOrderSerializer(
        read_only=True,
        allow_null=True,
        help_text="The market order this transfer carries; null for other requests.",
    )

    class Meta:
        model = TradeRequest
        fields = [
            "id",
            "kind",
            "status",
            "from_account",
            "to_account",
            "quantity",
            "batch",
            "vintage",
            "price_per_tonne",
            "currency",
            "beneficiary",
            "beneficiary_public",
            "purpose",
            "reporting_year",
            "note",
            "initiator",
            "idempotency_key",
            "created_at",
            "expires_at",
            "reviewed_by",
            "reviewed_at",
            "review_reason",
            "order",
        ]


class TradeRequestCreateSerializer(serializers.Serializer):
    """A transfer (``to_account`` and ``price_per_tonne``), a retirement
    (``beneficiary``, ``purpose``, ``reporting_year``) or a cancellation
    (registry admins; ``note`` is the reason)."""

    kind = serializers.ChoiceField(choices=TradeRequest.Kind.choices)
    from_account = serializers.CharField(
        max_length=20, help_text="Account number, e.g. BJ-H-000002."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=quantities.MAX_TONNES)
    to_account = serializers.CharField(
        max_length=20, required=False, help_text="Transfers: the buyer's account."
    )
    price_per_tonne = PriceField(
        required=False,
        help_text="Transfers: CNY per t CO2e, at most two decimal places.",
    )
    beneficiary = serializers.CharField(max_length=200, required=False)
    beneficiary_public = serializers.BooleanField(required=False, default=True)
    purpose = serializers.ChoiceField(
        choices=TradeRequest.Purpose.choices, required=False
    )
    reporting_year = serializers.IntegerField(
        min_value=2000, max_value=2100, required=False
    )
    batch = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="Only this batch."
    )
    vintage = serializers.IntegerField(
        min_value=2000,
        max_value=2100,
        required=False,
        allow_null=True,
        help_text="Only credits of this vintage.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    # What the service cannot be called without; it checks the rest itself.
    REQUIRED = {
        TradeRequest.Kind.TRANSFER: ("to_account", "price_per_tonne"),
        TradeRequest.Kind.RETIREMENT: ("reporting_year",),
        TradeRequest.Kind.CANCELLATION: (),
    }

    def validate(self, attrs):
        missing = {
            field: [_("This field is required for this kind of request.")]
            for field in self.REQUIRED[attrs["kind"]]
            if attrs.get(field) in (None, "")
        }
        if missing:
            raise serializers.ValidationError(missing, code="required")
        return attrs


class ReviewSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Required to reject.",
    )


class LedgerEntrySerializer(serializers.ModelSerializer):
    from_account = serializers.SlugRelatedField(slug_field="number", read_only=True)
    to_account = serializers.SlugRelatedField(slug_field="number", read_only=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "sequence",
            "kind",
            "batch",
            "first_serial",
            "last_serial",
            "quantity",
            "from_account",
            "to_account",
            "price_per_tonne",
            "currency",
            "trade_request",
            "actor",
            "created_at",
            "previous_hash",
            "entry_hash",
        ]


class LedgerFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices, required=False)
    account = serializers.CharField(max_length=20, required=False)
    batch = serializers.IntegerField(min_value=1, max_value=10**15, required=False)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)


# The market ----------------------------------------------------------------------


class ListingSerializer(serializers.ModelSerializer):
    """A listing on the market, open or closed."""

    number = serializers.CharField(read_only=True, help_text="E.g. L-000042.")
    project = serializers.CharField(source="batch.project.code")
    project_name_zh = serializers.CharField(source="batch.project.name_zh")
    project_name_en = serializers.CharField(source="batch.project.name_en")
    county = serializers.CharField(
        source="batch.project.county.adcode", help_text="County division code."
    )
    county_name_zh = serializers.CharField(source="batch.project.county.name_zh")
    county_name_en = serializers.CharField(source="batch.project.county.name_en")
    ecosystem_focus = serializers.ChoiceField(
        source="batch.project.ecosystem_focus", choices=Project.Ecosystem.choices
    )
    vintage = serializers.IntegerField(source="batch.vintage")
    serial_label = serializers.CharField(source="batch.serial_label")
    seller_account = serializers.CharField(source="account.number")
    seller_name_zh = serializers.SerializerMethodField()
    seller_name_en = serializers.SerializerMethodField()

    class Meta:
        model = Listing
        fields = [
            "id",
            "number",
            "status",
            "batch",
            "serial_label",
            "project",
            "project_name_zh",
            "project_name_en",
            "county",
            "county_name_zh",
            "county_name_en",
            "ecosystem_focus",
            "vintage",
            "quantity_listed",
            "quantity_left",
            "price_per_tonne",
            "currency",
            "minimum_lot",
            "ends_on",
            "note",
            "seller_account",
            "seller_name_zh",
            "seller_name_en",
            "created_at",
            "closed_at",
        ]

    @staticmethod
    def _public_seller(listing: Listing):
        account = listing.account
        return account.organization if account.is_public else None

    def get_seller_name_zh(self, listing: Listing) -> str:
        """Blank unless the seller's account shows the holder's name publicly."""
        seller = self._public_seller(listing)
        return seller.name_zh if seller else ""

    def get_seller_name_en(self, listing: Listing) -> str:
        """Blank unless the seller's account shows the holder's name publicly."""
        seller = self._public_seller(listing)
        return seller.name_en if seller else ""


class ListingFilterSerializer(serializers.Serializer):
    """The market's query parameters, checked before they reach the database."""

    county = serializers.RegexField(
        r"^[0-9]{6}$",
        required=False,
        trim_whitespace=False,
        help_text="County division code, e.g. 520521.",
    )
    ecosystem = serializers.ChoiceField(
        required=False, choices=Project.Ecosystem.choices
    )
    vintage = serializers.IntegerField(required=False, min_value=2000, max_value=2100)
    price_min = PriceField(
        required=False, min_value=0, help_text="CNY per t CO2e, at least this."
    )
    price_max = PriceField(
        required=False, min_value=0, help_text="CNY per t CO2e, at most this."
    )
    ordering = serializers.ChoiceField(
        required=False,
        choices=list(LISTING_ORDERINGS),
        help_text="Sort order (default price, cheapest first).",
    )


class ListingCreateSerializer(serializers.Serializer):
    account = serializers.CharField(
        max_length=20,
        help_text="The seller's holding account number, e.g. BJ-H-000002.",
    )
    batch = serializers.IntegerField(min_value=1, max_value=10**15)
    quantity = serializers.IntegerField(min_value=1, max_value=quantities.MAX_TONNES)
    price_per_tonne = PriceField(
        min_value=0, help_text="CNY per t CO2e, more than 0, at most two places."
    )
    minimum_lot = serializers.IntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=quantities.MAX_TONNES,
        help_text="The smallest order, in tonnes (all that is left may always "
        "be ordered); at most the quantity.",
    )
    ends_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The last day the listing is open (China Standard Time); "
        "open until withdrawn when omitted.",
    )
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_NOTE_LENGTH
    )


class ListingLowerSerializer(serializers.Serializer):
    quantity_left = serializers.IntegerField(
        min_value=0,
        max_value=quantities.MAX_TONNES,
        help_text="Tonnes to keep on the market, fewer than are left now; 0 "
        "withdraws the listing.",
    )


class OrderCertificateSerializer(serializers.Serializer):
    number = serializers.CharField()
    verification_url = serializers.SerializerMethodField()

    def get_verification_url(self, certificate: Certificate) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("public:certificate-verify", args=[certificate.token])
        )


class OrderSerializer(_PaymentMixin, serializers.ModelSerializer):
    """An order from a listing, for its buyer, its seller and registry admins.
    ``status`` is its trade request's: awaiting_payment (the seller has not
    confirmed the payment), pending (the registry admins review it), settled,
    declined (by the seller), rejected or expired."""

    number = serializers.CharField(read_only=True, help_text="E.g. O-000042.")
    listing_number = serializers.CharField(source="listing.number")
    status = serializers.ChoiceField(
        source="trade_request.status", choices=TradeRequest.Status.choices
    )
    batch = serializers.IntegerField(source="listing.batch_id")
    project = serializers.CharField(source="listing.batch.project.code")
    vintage = serializers.IntegerField(source="listing.batch.vintage")
    seller_account = serializers.CharField(source="listing.account.number")
    seller_name_zh = serializers.CharField(
        source="listing.account.organization.name_zh"
    )
    seller_name_en = serializers.CharField(
        source="listing.account.organization.name_en"
    )
    buyer_account = serializers.CharField(source="trade_request.to_account.number")
    buyer_name_zh = serializers.CharField(
        source="trade_request.to_account.organization.name_zh"
    )
    buyer_name_en = serializers.CharField(
        source="trade_request.to_account.organization.name_en"
    )
    quantity = serializers.IntegerField(source="trade_request.quantity")
    price_per_tonne = serializers.DecimalField(
        source="trade_request.price_per_tonne",
        max_digits=quantities.MAX_PRICE_DIGITS,
        decimal_places=2,
    )
    currency = serializers.CharField(source="trade_request.currency")
    created_at = serializers.DateTimeField(source="trade_request.created_at")
    expires_at = serializers.DateTimeField(
        source="trade_request.expires_at",
        help_text="Awaiting payment: the seller's deadline to confirm it; "
        "pending: the review's.",
    )
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "listing",
            "listing_number",
            "status",
            "batch",
            "project",
            "vintage",
            "seller_account",
            "seller_name_zh",
            "seller_name_en",
            "buyer_account",
            "buyer_name_zh",
            "buyer_name_en",
            "quantity",
            "price_per_tonne",
            "currency",
            "amount",
            "retire_on_delivery",
            "beneficiary",
            "beneficiary_public",
            "purpose",
            "reporting_year",
            "payment",
            "declined_at",
            "decline_reason",
            "trade_request",
            "created_at",
            "expires_at",
            "certificate",
        ]

    @extend_schema_field(OrderCertificateSerializer(allow_null=True))
    def get_certificate(self, order: Order) -> dict | None:
        """The retirement certificate, once an order retired on delivery has
        settled; null before and for other orders."""
        retirement = order.retirement_request
        certificate = getattr(retirement, "certificate", None) if retirement else None
        if certificate is None:
            return None
        return OrderCertificateSerializer(certificate, context=self.context).data


class OrderCreateSerializer(serializers.Serializer):
    """An order from an open listing into the buyer's holding account; with
    ``retire_on_delivery`` the credits are retired for ``beneficiary`` when
    the order settles (``purpose`` required then)."""

    listing = serializers.IntegerField(min_value=1, max_value=10**15)
    buyer_account = serializers.CharField(
        max_length=20, help_text="The buyer's holding account number."
    )
    quantity = serializers.IntegerField(
        min_value=1,
        max_value=quantities.MAX_TONNES,
        help_text="At least the listing's minimum lot (or all that is left), "
        "at most what is left.",
    )
    retire_on_delivery = serializers.BooleanField(required=False, default=False)
    beneficiary = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    beneficiary_public = serializers.BooleanField(required=False, default=True)
    purpose = serializers.ChoiceField(
        choices=TradeRequest.Purpose.choices,
        required=False,
        help_text="Required to retire on delivery.",
    )
    reporting_year = serializers.IntegerField(
        min_value=2000, max_value=2100, required=False, allow_null=True
    )


class PaymentConfirmationSerializer(serializers.Serializer):
    amount = AmountField(help_text="CNY received: the order's full amount due.")
    paid_on = serializers.DateField(
        help_text="The day the money arrived: from the order's date to today."
    )
    reference = serializers.CharField(
        max_length=100, help_text="The bank's reference for the payment."
    )


class DeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, help_text="Why the order is declined: the buyer sees it."
    )
