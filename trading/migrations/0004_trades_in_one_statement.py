"""PostgreSQL computes each journal entry's content hash in its insert trigger
too, and reserves and settles a request in one statement each (functions in
trading/db_guards.py). The content hash's canonical form became PostgreSQL's
jsonb text, so journals written before are re-linked in that form."""

from django.db import migrations, models

from trading.db_guards import (
    POSTGRES_TRADE_BACKWARD,
    POSTGRES_TRADE_FORWARD,
    relink_journal,
    run_for_vendor,
)



class Migration(migrations.Migration):
    dependencies = [("trading", "0003_ledger_chain_by_database")]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="content_hash",
            field=models.CharField(
                db_default="", max_length=64, verbose_name="content hash"
            ),
        ),
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_TRADE_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_TRADE_BACKWARD}),
        ),
        migrations.RunPython(relink_journal, migrations.RunPython.noop),
    ]
