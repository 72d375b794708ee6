"""No double issuance in the database too: on PostgreSQL, one project's credit
batches cannot have overlapping monitoring periods (an exclusion constraint;
trading.services refuses it first, with a message)."""

from django.db import migrations

from trading.db_guards import (
    POSTGRES_PERIODS_BACKWARD,
    POSTGRES_PERIODS_FORWARD,
    run_for_vendor,
)


class Migration(migrations.Migration):
    dependencies = [("trading", "0005_certificates")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_PERIODS_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_PERIODS_BACKWARD}),
        )
    ]
