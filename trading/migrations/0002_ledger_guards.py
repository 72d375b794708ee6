"""Database-level guards for the ledger (design section 5):

- the journal is append-only: UPDATE and DELETE (and TRUNCATE on PostgreSQL)
  of trading_ledgerentry are refused by triggers, on both databases;
- on PostgreSQL, blocks of one batch cannot overlap and batches cannot share a
  serial, whatever code writes (exclusion constraints over int8range).

The project's ``flush`` command (used by tests) is the one sanctioned way to empty
the journal; see trading/management/commands/flush.py.
"""

from django.db import migrations

from trading.db_guards import (
    POSTGRES_BACKWARD,
    POSTGRES_FORWARD,
    SQLITE_BACKWARD,
    SQLITE_FORWARD,
)

def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial"), ("registry", "0004_creditbatch")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
