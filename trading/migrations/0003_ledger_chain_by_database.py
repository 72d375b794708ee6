"""The hash chain in two steps (see trading/chain.py): each entry's own
``content_hash``, then the link over the previous hash, the sequence and that
content hash, which PostgreSQL's insert trigger computes (trading/db_guards.py).

Journals written before this migration are re-linked in the new form, in
sequence order, with the append-only guard lifted for this step alone: the
entries' contents are untouched, only their hashes change form."""

from django.db import migrations, models

from trading.db_guards import (
    POSTGRES_CHAIN_BACKWARD,
    POSTGRES_CHAIN_FORWARD,
    relink_journal,
    run_for_vendor,
)



class Migration(migrations.Migration):
    dependencies = [("trading", "0002_ledger_guards")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="content_hash",
            field=models.CharField(
                default="", max_length=64, verbose_name="content hash"
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="sequence",
            field=models.PositiveBigIntegerField(
                db_default=0, unique=True, verbose_name="sequence"
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="previous_hash",
            field=models.CharField(
                db_default="", max_length=64, verbose_name="previous hash"
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="entry_hash",
            field=models.CharField(
                db_default="", max_length=64, unique=True, verbose_name="entry hash"
            ),
        ),
        migrations.RunPython(relink_journal, migrations.RunPython.noop),
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_CHAIN_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_CHAIN_BACKWARD}),
        ),
    ]
