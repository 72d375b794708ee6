"""Trading serializers: shapes only; ``trading.services`` decides."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from api.fields import PriceField
from common import quantities
from registry.models import Account
from trading.models import CreditBatch, CreditBlock, LedgerEntry, TradeRequest


class BalanceSerializer(serializers.Serializer):
    active = serializers.IntegerField()
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


class TradeRequestSerializer(serializers.ModelSerializer):
    from_account = serializers.SlugRelatedField(slug_field="number", read_only=True)
    to_account = serializers.SlugRelatedField(slug_field="number", read_only=True)

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
