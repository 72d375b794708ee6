"""Published, signed journal heads (trading.models.JournalAnchor)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("trading", "0006_batch_periods_no_overlap")]

    operations = [
        migrations.CreateModel(
            name="JournalAnchor",
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
                ("sequence", models.PositiveBigIntegerField(verbose_name="sequence")),
                (
                    "entry_hash",
                    models.CharField(max_length=64, verbose_name="entry hash"),
                ),
                ("published_at", models.DateTimeField(verbose_name="published at")),
                (
                    "key_id",
                    models.CharField(max_length=64, verbose_name="key fingerprint"),
                ),
                (
                    "public_key",
                    models.CharField(max_length=44, verbose_name="public key"),
                ),
                (
                    "signature",
                    models.CharField(max_length=88, verbose_name="signature"),
                ),
            ],
            options={
                "verbose_name": "published journal head",
                "verbose_name_plural": "published journal heads",
                "ordering": ["-sequence", "-published_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("sequence", "key_id"),
                        name="anchor_once_per_head_and_key",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("sequence__gt", 0)),
                        name="anchor_sequence_positive",
                    ),
                ],
            },
        ),
    ]
