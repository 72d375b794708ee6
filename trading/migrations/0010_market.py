"""The market (trading.market): listings, orders and their payment records.

Blocks gain the state 'listed' (pointing at their listing) and journal entries
an optional listing, which the hash chain covers only when present, so every
earlier entry's hash stays as it was. Requests gain the statuses 'awaiting
payment' (an order before its seller confirms the money) and 'declined'.

On PostgreSQL: the chaining trigger hashes the listing; trading_list,
trading_delist and trading_order move listed serials in one statement each;
trading_release returns a failed order's serials to its open listing;
trading_settle delivers an order retired on delivery. All run with the
owner's rights, executable only by the application role (grants after
migrate, trading/apps.py).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from trading.db_guards import (
    POSTGRES_MARKET_BACKWARD,
    POSTGRES_MARKET_FORWARD,
    run_for_vendor,
)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_alerts_and_heartbeats"),
        ("trading", "0009_creditbatch_moves_from_registry"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "amount",
                    models.DecimalField(
                        decimal_places=2, max_digits=24, verbose_name="amount due"
                    ),
                ),
                (
                    "retire_on_delivery",
                    models.BooleanField(
                        default=False, verbose_name="retire on delivery"
                    ),
                ),
                (
                    "beneficiary",
                    models.CharField(
                        blank=True, max_length=200, verbose_name="beneficiary"
                    ),
                ),
                (
                    "beneficiary_public",
                    models.BooleanField(
                        default=True, verbose_name="name the beneficiary publicly"
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("voluntary", "Voluntary carbon neutrality"),
                            ("event", "Carbon-neutral event"),
                            ("product", "Carbon-neutral product or service"),
                            ("compliance", "Compliance offsetting"),
                            ("compensation", "Ecological compensation"),
                            ("other", "Other"),
                        ],
                        max_length=16,
                        verbose_name="purpose",
                    ),
                ),
                (
                    "reporting_year",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="reporting year"
                    ),
                ),
                (
                    "payment_amount",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        max_digits=24,
                        null=True,
                        verbose_name="amount received",
                    ),
                ),
                (
                    "payment_date",
                    models.DateField(
                        blank=True, null=True, verbose_name="payment date"
                    ),
                ),
                (
                    "payment_reference",
                    models.CharField(
                        blank=True, max_length=100, verbose_name="bank reference"
                    ),
                ),
                (
                    "payment_confirmed_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="payment confirmed at"
                    ),
                ),
                (
                    "declined_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="declined at"
                    ),
                ),
                (
                    "decline_reason",
                    models.TextField(blank=True, verbose_name="reason for declining"),
                ),
            ],
            options={
                "verbose_name": "order",
                "verbose_name_plural": "orders",
                "ordering": ["-pk"],
            },
        ),
        migrations.AlterField(
            model_name="creditblock",
            name="state",
            field=models.CharField(
                choices=[
                    ("active", "Active"),
                    ("listed", "Listed for sale"),
                    ("reserved", "Reserved"),
                    ("retired", "Retired"),
                    ("cancelled", "Cancelled"),
                ],
                max_length=12,
                verbose_name="state",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("issue", "Issue"),
                    ("buffer", "Buffer withholding"),
                    ("reserve", "Reserve"),
                    ("release", "Release"),
                    ("transfer", "Transfer"),
                    ("retire", "Retire"),
                    ("cancel", "Cancel"),
                    ("list", "List for sale"),
                    ("delist", "Take off the market"),
                    ("order", "Order"),
                    ("return", "Return to listing"),
                ],
                max_length=10,
                verbose_name="kind",
            ),
        ),
        migrations.AlterField(
            model_name="traderequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("awaiting_payment", "Awaiting payment"),
                    ("pending", "Pending review"),
                    ("settled", "Settled"),
                    ("rejected", "Rejected"),
                    ("declined", "Declined by the seller"),
                    ("expired", "Expired"),
                ],
                default="pending",
                max_length=16,
                verbose_name="status",
            ),
        ),
        migrations.CreateModel(
            name="Listing",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "quantity_listed",
                    models.PositiveBigIntegerField(
                        verbose_name="quantity listed (t CO2e)"
                    ),
                ),
                (
                    "quantity_left",
                    models.PositiveBigIntegerField(
                        verbose_name="quantity left (t CO2e)"
                    ),
                ),
                (
                    "price_per_tonne",
                    models.DecimalField(
                        decimal_places=2, max_digits=12, verbose_name="price per t CO2e"
                    ),
                ),
                (
                    "currency",
                    models.CharField(
                        default="CNY", max_length=3, verbose_name="currency"
                    ),
                ),
                (
                    "minimum_lot",
                    models.PositiveBigIntegerField(verbose_name="minimum lot (t CO2e)"),
                ),
                (
                    "ends_on",
                    models.DateField(
                        blank=True,
                        help_text="The last day the listing is open (China Standard Time).",
                        null=True,
                        verbose_name="open until",
                    ),
                ),
                ("note", models.TextField(blank=True, verbose_name="note")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("open", "Open"),
                            ("withdrawn", "Withdrawn"),
                            ("expired", "Expired"),
                        ],
                        default="open",
                        max_length=12,
                        verbose_name="status",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="listed at"),
                ),
                (
                    "closed_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="closed at"
                    ),
                ),
                (
                    "idempotency_key",
                    models.CharField(max_length=100, verbose_name="idempotency key"),
                ),
                ("request_hash", models.CharField(max_length=64)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="listings",
                        to="registry.account",
                        verbose_name="seller's account",
                    ),
                ),
                (
                    "batch",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="listings",
                        to="trading.creditbatch",
                        verbose_name="batch",
                    ),
                ),
                (
                    "closed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="listings_closed",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="listings",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "listing",
                "verbose_name_plural": "listings",
                "ordering": ["-created_at", "-pk"],
            },
        ),
        migrations.AddField(
            model_name="creditblock",
            name="listing",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="blocks",
                to="trading.listing",
            ),
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="listing",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="ledger_entries",
                to="trading.listing",
            ),
        ),
        migrations.AddConstraint(
            model_name="creditblock",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("listing__isnull", False), ("state", "listed")),
                    models.Q(
                        models.Q(("state", "listed"), _negated=True),
                        ("listing__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="block_listed_on_a_listing",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="declined_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="orders_declined",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="listing",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="orders",
                to="trading.listing",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="payment_confirmed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="payments_confirmed",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="retirement_request",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="delivered_order",
                to="trading.traderequest",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="trade_request",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="order",
                to="trading.traderequest",
            ),
        ),
        migrations.AddIndex(
            model_name="listing",
            index=models.Index(
                fields=["status", "price_per_tonne"],
                name="trading_lis_status_d88ac7_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="listing",
            index=models.Index(
                fields=["status", "ends_on"], name="trading_lis_status_388dc1_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity_listed__gt", 0)),
                name="listing_quantity_positive",
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity_left__lte", models.F("quantity_listed"))),
                name="listing_left_at_most_listed",
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("minimum_lot__gte", 1),
                    ("minimum_lot__lte", models.F("quantity_listed")),
                ),
                name="listing_minimum_lot_in_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(("price_per_tonne__gt", 0)),
                name="listing_price_positive",
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status", "open"), ("quantity_left", 0), _connector="OR"
                ),
                name="listing_closed_holds_nothing",
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.UniqueConstraint(
                fields=("created_by", "idempotency_key"), name="listing_idempotency"
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(("amount__gt", 0)), name="order_amount_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("retire_on_delivery", False),
                    models.Q(("beneficiary", ""), _negated=True),
                    _connector="OR",
                ),
                name="order_retirement_names_beneficiary",
            ),
        ),
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_MARKET_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_MARKET_BACKWARD}),
        ),
    ]
