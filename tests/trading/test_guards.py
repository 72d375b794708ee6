"""The database itself protects the journal; tampering is detected."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from trading import chain
from trading.models import LedgerCheck, LedgerEntry
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


def test_a_raw_sql_update_of_a_journal_row_fails(issue):
    issue()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE trading_ledgerentry SET quantity = quantity + 1")
    assert list(LedgerEntry.objects.values_list("quantity", flat=True)) == [900, 100]


def test_a_raw_sql_delete_of_a_journal_row_fails(issue):
    issue()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM trading_ledgerentry")
    assert LedgerEntry.objects.count() == 2


def _tamper(sql: str) -> None:
    """What an attacker with the table owner's rights could do: switch the guard
    off, edit a row, switch it on again."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
            cursor.execute(sql)
            cursor.execute("SET session_replication_role = origin")
        else:
            cursor.execute("DROP TRIGGER trading_ledgerentry_no_update")
            cursor.execute(sql)
            from trading.db_guards import SQLITE_FORWARD

            cursor.execute(SQLITE_FORWARD[0])


def test_a_tampered_entry_makes_verify_ledger_fail(issue):
    issue()
    call_command("verify_ledger")
    _tamper("UPDATE trading_ledgerentry SET price_per_tonne = 1 WHERE sequence = 1")
    report = verify_ledger()
    assert not report.ok
    assert report.violations[0]["check"] == "hash_chain"
    assert report.violations[0]["sequence"] == 1
    with pytest.raises(CommandError, match="violation"):
        call_command("verify_ledger")
    assert LedgerCheck.objects.filter(ok=False).exists()


def test_lost_credits_break_conservation(issue):
    batch = issue()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET last_serial = last_serial - 1, "
            "quantity = quantity - 1 WHERE batch_id = %s AND first_serial = 1",
            [batch.pk],
        )
    checks = {violation["check"] for violation in verify_ledger().violations}
    # The journal, replayed, still puts the lost tonne in the seller's account.
    assert checks == {"conservation", "tiling", "holding", "serials"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL constraint")
def test_postgres_refuses_overlapping_blocks_of_a_batch(issue):
    batch = issue()
    block = batch.blocks.first()
    with (
        pytest.raises(DatabaseError, match="trading_block_no_overlap"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO trading_creditblock (batch_id, account_id, first_serial, "
            "last_serial, quantity, state, updated_at) "
            "VALUES (%s, %s, 5, 5, 1, 'active', now())",
            [batch.pk, block.account_id],
        )


def test_a_journal_cut_short_makes_verify_ledger_fail(issue):
    issue()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("DELETE FROM trading_ledgerentry WHERE sequence = 2")
            cursor.execute("SET session_replication_role = origin")
        else:
            cursor.execute("DROP TRIGGER trading_ledgerentry_no_delete")
            cursor.execute("DELETE FROM trading_ledgerentry WHERE sequence = 2")
            from trading.db_guards import SQLITE_FORWARD

            cursor.execute(SQLITE_FORWARD[1])
    problems = [
        problem
        for violation in verify_ledger(record=False).violations
        for problem in violation.get("problems", [])
    ]
    assert problems == ["the journal ends before the head's last entry"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL trigger")
def test_postgres_hashes_and_links_every_entry_itself_as_python_would(issue):
    batch = issue()
    entry = LedgerEntry.objects.get(sequence=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trading_ledgerentry (sequence, kind, batch_id, first_serial,"
            " last_serial, quantity, to_account_id, currency, idempotency_key,"
            " created_at, content_hash, previous_hash, entry_hash) VALUES (999, "
            "'issue', %s, 1, 1, 1, %s, '', %s, now(), 'forged', 'forged', 'forged')",
            [batch.pk, entry.to_account_id, 'ключ "键"\n\u0001'],
        )
    forged = LedgerEntry.objects.get(sequence=3)
    last = LedgerEntry.objects.get(sequence=2)
    assert forged.content_hash == chain.content_hash(forged.payload())
    assert forged.previous_hash == last.entry_hash
    assert forged.entry_hash == chain.link_hash(last.entry_hash, 3, forged.content_hash)
    checks = {
        violation["check"] for violation in verify_ledger(record=False).violations
    }
    # The chain holds; only the replay objects: serial 1 issued a second time.
    assert checks == {"journal"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL constraint")
def test_postgres_refuses_a_second_batch_for_an_issued_period(issue):
    batch = issue()
    with (
        pytest.raises(DatabaseError, match="registry_batch_periods_no_overlap"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO registry_creditbatch (project_id, vintage, monitoring_start,"
            " monitoring_end, quantity, buffer_quantity, first_serial, last_serial,"
            " source, issued_by_id, issued_at) SELECT project_id, vintage,"
            " monitoring_end, monitoring_end + 30, 1, 0, last_serial + 1,"
            " last_serial + 1, '', issued_by_id, now() FROM registry_creditbatch"
            " WHERE id = %s",
            [batch.pk],
        )


@override_settings(LEDGER_PURGE_ALLOWED=False)
def test_flush_is_refused_where_the_ledger_may_not_be_purged(issue):
    issue()
    with pytest.raises(CommandError, match="flush is refused"):
        call_command("flush", interactive=False, verbosity=0)
    assert LedgerEntry.objects.count() == 2


@pytest.mark.django_db(transaction=True)
@override_settings(LEDGER_PURGE_ALLOWED=True)
def test_flush_empties_the_journal_where_purging_is_allowed(reference_data, issue):
    issue()
    call_command("flush", interactive=False, verbosity=0)
    assert not LedgerEntry.objects.exists()
