"""The verification's credit batch is now trading.CreditBatch (trading 0009):
the same table, so in Django's state only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("estimation", "0003_verification"),
        ("trading", "0009_creditbatch_moves_from_registry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="verification",
                    name="batch",
                    field=models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="verification",
                        to="trading.creditbatch",
                        verbose_name="credit batch",
                    ),
                ),
            ],
        )
    ]
