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
    run_for_vendor,
)


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial"), ("registry", "0004_creditbatch")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
