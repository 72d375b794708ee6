"""Indexes for the public market's sort orders (price, tonnes left, newest):
one page of open listings is read in index order, not sorted from a scan."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_alerts_and_heartbeats"),
        ("trading", "0010_market"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="listing",
            name="trading_lis_status_d88ac7_idx",
        ),
        migrations.AddIndex(
            model_name="listing",
            index=models.Index(
                fields=["status", "price_per_tonne", "id"],
                name="trading_lis_status_015c7c_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="listing",
            index=models.Index(
                fields=["status", "quantity_left", "id"],
                name="trading_lis_status_df0f2d_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="listing",
            index=models.Index(
                fields=["status", "-created_at", "-id"],
                name="trading_lis_status_7dcd81_idx",
            ),
        ),
    ]
