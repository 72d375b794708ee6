"""What an attacker with the database owner's rights can do to the ledger, for
the tests that show the audit and the published heads catch it: switch the
guards off, change rows, and re-hash the journal so its chain verifies again."""

from contextlib import contextmanager

from django.db import connection

from trading import chain
from trading.models import LedgerEntry, LedgerHead

LEDGER_TABLES = ("trading_ledgerentry", "trading_ledgerhead", "trading_creditblock")


@contextmanager
def guards_lifted():
    """Every trigger of the ledger's tables off inside, on again after.
    PostgreSQL: triggers skip a replica session (superuser only); SQLite: the
    triggers are dropped and created again from their own SQL."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            try:
                yield cursor
            finally:
                cursor.execute("SET session_replication_role = origin")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            f"AND tbl_name IN ({', '.join(['%s'] * len(LEDGER_TABLES))})",
            LEDGER_TABLES,
        )
        triggers = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield cursor
        finally:
            for _name, sql in triggers:
                cursor.execute(sql)


def rehash_from(sequence: int) -> None:
    """Recompute the content hash and link of every entry from ``sequence`` on,
    and the head, as trading.chain does: the chain verifies again. Call with
    the guards lifted."""
    previous = (
        LedgerEntry.objects.filter(sequence__lt=sequence)
        .order_by("-sequence")
        .values_list("entry_hash", flat=True)
        .first()
    ) or chain.GENESIS
    last = sequence - 1
    for entry in LedgerEntry.objects.filter(sequence__gte=sequence).order_by(
        "sequence"
    ):
        content = chain.content_hash(entry.payload())
        link = chain.link_hash(previous, entry.sequence, content)
        LedgerEntry.objects.filter(pk=entry.pk).update(
            content_hash=content, previous_hash=previous, entry_hash=link
        )
        previous, last = link, entry.sequence
    LedgerHead.objects.filter(pk=1).update(last_sequence=last, last_hash=previous)


def delete_entry_and_renumber(sequence: int) -> None:
    """Remove one entry, close the gap in the sequence and re-hash the rest."""
    LedgerEntry.objects.filter(sequence=sequence).delete()
    for pk in (
        LedgerEntry.objects.filter(sequence__gt=sequence)
        .order_by("sequence")
        .values_list("pk", flat=True)
    ):
        entry = LedgerEntry.objects.get(pk=pk)
        LedgerEntry.objects.filter(pk=pk).update(sequence=entry.sequence - 1)
    rehash_from(sequence)
