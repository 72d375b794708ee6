"""CreditBatch moves from registry to trading, its only writer: in Django's
state only. The table keeps its name, ``registry_creditbatch`` (``db_table``),
so its rows, its PostgreSQL exclusion constraints (registry_batch_no_overlap,
registry_batch_periods_no_overlap) and the owner-rights ledger functions that
read it (trading/db_guards.py) stay as they are: no SQL runs. The foreign keys
of the ledger's tables now point at trading.CreditBatch, in state only too
(the same table). registry 0007 then drops the old model from registry's
state; estimation 0004 re-points the verification's key."""

import django.db.models.deletion
import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models


def _batch_key(related_name: str, **options):
    return models.ForeignKey(
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to="trading.creditbatch",
        **options,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0006_role_grants"),
        ("trading", "0008_database_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="CreditBatch",
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
                            "vintage",
                            models.PositiveSmallIntegerField(verbose_name="vintage"),
                        ),
                        (
                            "monitoring_start",
                            models.DateField(verbose_name="monitoring period start"),
                        ),
                        (
                            "monitoring_end",
                            models.DateField(verbose_name="monitoring period end"),
                        ),
                        (
                            "quantity",
                            models.PositiveBigIntegerField(
                                verbose_name="quantity (t CO2e)"
                            ),
                        ),
                        (
                            "buffer_quantity",
                            models.PositiveBigIntegerField(
                                verbose_name="buffer withheld (t CO2e)"
                            ),
                        ),
                        (
                            "first_serial",
                            models.PositiveBigIntegerField(
                                unique=True, verbose_name="first serial"
                            ),
                        ),
                        (
                            "last_serial",
                            models.PositiveBigIntegerField(
                                unique=True, verbose_name="last serial"
                            ),
                        ),
                        (
                            "source",
                            models.CharField(
                                blank=True,
                                help_text=(
                                    "What the issuance rests on, e.g. an estimation run."
                                ),
                                max_length=100,
                                verbose_name="source",
                            ),
                        ),
                        (
                            "issued_at",
                            models.DateTimeField(
                                auto_now_add=True, verbose_name="issued at"
                            ),
                        ),
                        (
                            "issued_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="batches_issued",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="batches",
                                to="registry.project",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "credit batch",
                        "verbose_name_plural": "credit batches",
                        "db_table": "registry_creditbatch",
                        "ordering": ["-issued_at", "-pk"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("quantity__gt", 0)),
                                name="batch_quantity_positive",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("first_serial__gte", 1)),
                                name="batch_serials_from_one",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    (
                                        "last_serial",
                                        django.db.models.expressions.CombinedExpression(
                                            django.db.models.expressions.CombinedExpression(
                                                models.F("first_serial"),
                                                "+",
                                                models.F("quantity"),
                                            ),
                                            "-",
                                            models.Value(1),
                                        ),
                                    )
                                ),
                                name="batch_range_matches_quantity",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("buffer_quantity__lt", models.F("quantity"))
                                ),
                                name="batch_buffer_below_quantity",
                            ),
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="creditblock",
                    name="batch",
                    field=_batch_key("blocks"),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="batch",
                    field=_batch_key("ledger_entries"),
                ),
                migrations.AlterField(
                    model_name="traderequest",
                    name="batch",
                    field=_batch_key(
                        "requests", blank=True, null=True, verbose_name="batch"
                    ),
                ),
            ],
        )
    ]
