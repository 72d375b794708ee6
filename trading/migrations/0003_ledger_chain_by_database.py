"""The hash chain in two steps (see trading/chain.py): each entry's own
``content_hash``, then the link over the previous hash, the sequence and that
content hash, which PostgreSQL's insert trigger computes (trading/db_guards.py).

Journals written before this migration are re-linked in the new form, in
sequence order, with the append-only guard lifted for this step alone: the
entries' contents are untouched, only their hashes change form."""

from django.db import migrations, models

from trading import chain
from trading.db_guards import (
    POSTGRES_CHAIN_BACKWARD,
    POSTGRES_CHAIN_FORWARD,
    SQLITE_BACKWARD,
    SQLITE_FORWARD,
)


def _relink(apps, schema_editor):
    from trading.models import LedgerEntry as CurrentEntry

    entries = apps.get_model("trading", "LedgerEntry")
    head_model = apps.get_model("trading", "LedgerHead")
    vendor = schema_editor.connection.vendor
    guard = "ALTER TABLE trading_ledgerentry {} TRIGGER trading_ledgerentry_append_only"
    if vendor == "postgresql":
        schema_editor.execute(guard.format("DISABLE"))
    elif vendor == "sqlite":
        # SQLite rebuilt the table for the fields above, which dropped its
        # triggers; they are put back below in every case.
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(
                statement.replace("DROP TRIGGER", "DROP TRIGGER IF EXISTS")
            )
    previous, sequence = chain.GENESIS, 0
    for entry in entries.objects.order_by("sequence"):
        sequence = entry.sequence
        content = chain.content_hash(CurrentEntry.payload(entry))
        link = chain.link_hash(previous, sequence, content)
        entries.objects.filter(pk=entry.pk).update(
            content_hash=content, previous_hash=previous, entry_hash=link
        )
        previous = link
    if sequence:
        head_model.objects.update_or_create(
            pk=1, defaults={"last_sequence": sequence, "last_hash": previous}
        )
    if vendor == "postgresql":
        schema_editor.execute(guard.format("ENABLE"))
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


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
        migrations.RunPython(_relink, migrations.RunPython.noop),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_CHAIN_FORWARD}),
            _run({"postgresql": POSTGRES_CHAIN_BACKWARD}),
        ),
    ]
