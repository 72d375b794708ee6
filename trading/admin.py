"""The ledger in Django admin: read-only. Holdings change only through the
trading services, with their journal entries."""

from django.contrib import admin

from trading.models import (
    CreditBatch,
    CreditBlock,
    LedgerCheck,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditBatch)
class CreditBatchAdmin(ReadOnlyAdmin):
    """Batches are issued by the ledger's issuing service only."""

    list_display = ["serial_label", "project", "vintage", "quantity", "buffer_quantity"]
    list_filter = ["vintage"]
    list_select_related = ["project"]
    search_fields = ["project__code"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "sequence",
        "kind",
        "batch",
        "first_serial",
        "last_serial",
        "quantity",
        "from_account",
        "to_account",
        "actor",
        "created_at",
    ]
    list_filter = ["kind"]
    list_select_related = ["batch__project", "from_account", "to_account", "actor"]
    search_fields = ["entry_hash", "idempotency_key"]


@admin.register(CreditBlock)
class CreditBlockAdmin(ReadOnlyAdmin):
    list_display = [
        "batch",
        "first_serial",
        "last_serial",
        "quantity",
        "account",
        "state",
    ]
    list_filter = ["state"]
    list_select_related = ["batch__project", "account"]


@admin.register(TradeRequest)
class TradeRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "kind",
        "status",
        "quantity",
        "from_account",
        "to_account",
        "initiator",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["from_account", "to_account", "initiator"]


@admin.register(LedgerCheck)
class LedgerCheckAdmin(ReadOnlyAdmin):
    list_display = ["ran_at", "ok", "summary"]
    list_filter = ["ok"]


@admin.register(Listing)
class ListingAdmin(ReadOnlyAdmin):
    """Listings change only through trading.market (their serials move)."""

    list_display = [
        "number",
        "batch",
        "account",
        "price_per_tonne",
        "quantity_listed",
        "quantity_left",
        "minimum_lot",
        "ends_on",
        "status",
    ]
    list_filter = ["status"]
    list_select_related = ["batch__project", "account"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "listing",
        "trade_request",
        "amount",
        "retire_on_delivery",
        "payment_reference",
        "payment_confirmed_at",
    ]
    list_select_related = ["listing", "trade_request"]
    search_fields = ["payment_reference"]
