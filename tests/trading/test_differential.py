"""The ledger's two implementations held together (design section 5): the same
random sequences of the hypothesis machine's operations (test_properties.py)
run once through PostgreSQL's functions (trading/db_guards.py) and once
through the Python steps of trading/services.py and trading/market.py, on
PostgreSQL both times, and every resulting row of the blocks, the journal
(hashes included), the trade requests, the journal head, the market's
listings and orders and the certificates must be identical, timestamps
included (a certificate's random token aside).

What makes the two runs comparable:
- Same ids and serials: each run starts from a flushed database (flush resets
  the sequences) and builds the same organizations, users and project.
- Same clock: every step is its own transaction. PostgreSQL's ``now()`` is the
  transaction's start, so the first (database) run reads it and freezes
  Django's clock to it for that step; the second (Python) run replays the same
  instants step by step. Python and PL/pgSQL therefore stamp the same value.
- Same hashing: in the Python run the journal's chaining trigger is switched
  off, so ``trading.services._link`` computes the sequence and hashes itself,
  as it does on SQLite.
"""

from datetime import datetime
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry.divisions import load_divisions
from registry.models import AdministrativeDivision
from tests.trading.test_properties import EVERY_STEP, LedgerMachine
from trading import market, services
from trading.models import (
    Certificate,
    CreditBlock,
    LedgerEntry,
    LedgerHead,
    Listing,
    Order,
    TradeRequest,
)

pytestmark = [
    pytest.mark.production_stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="compares with PostgreSQL's functions"
    ),
]

COMPARED = (
    CreditBlock,
    LedgerEntry,
    TradeRequest,
    LedgerHead,
    Listing,
    Order,
    Certificate,
)
# Random, not chosen: a certificate's public address.
NOT_COMPARED = {"token"}
# The machine's operations, with the machine's own argument strategies.
OPERATIONS = (
    "issue",
    "request",
    "review",
    "time_passes",
    "list_credits",
    "change_listing",
    "order",
    "follow_order",
)


def _operation(name: str):
    arguments = getattr(LedgerMachine, name).hypothesis_stateful_rule.arguments
    return st.tuples(st.just(name), st.fixed_dictionaries(arguments))


# EVERY_STEP (test_properties.py), one sequence with every kind of step, is
# tried first. Random sequences start with a batch, partly listed, so the
# market's steps have something to act on.
OPENING = [
    ("issue", {"quantity": 500, "buffer_share": 0, "holder": 0}),
    (
        "list_credits",
        {"holder": 0, "batch": 0, "share": 60, "price": "95", "lot_share": 10},
    ),
]
SEQUENCES = st.lists(
    st.one_of(*map(_operation, OPERATIONS)), min_size=1, max_size=14
).map(lambda steps: [*OPENING, *steps])


def _snapshot() -> dict[str, dict[int, dict]]:
    return {
        model._meta.db_table: {
            row["id"]: {
                column: value
                for column, value in row.items()
                if column not in NOT_COMPARED
            }
            for row in model.objects.order_by("pk").values()
        }
        for model in COMPARED
    }


def _transaction_time() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def _run(sequence, clock: list[datetime] | None) -> tuple[list[datetime], dict]:
    """Run the sequence on a fresh ledger: each operation in its own
    transaction at ``clock[i]`` (or, when no clock is given, at the
    transaction's own time, which is returned for the next run)."""
    call_command("flush", interactive=False, verbosity=0)
    if not AdministrativeDivision.objects.exists():
        load_divisions(AdministrativeDivision)
    machine = LedgerMachine()
    machine.set_up()
    times = []
    for step, (name, arguments) in enumerate(sequence):
        with transaction.atomic():
            now = _transaction_time() if clock is None else clock[step]
            times.append(now)
            with mock.patch("django.utils.timezone.now", return_value=now):
                getattr(machine, name)(**arguments)
        machine.every_invariant_holds()
    return times, _snapshot()


def _in_python(run):
    """Run through the Python steps of trading.services and trading.market
    (which imports the switch), with the database's chaining trigger off so
    the Python hashes are the ones stored."""
    trigger = "ALTER TABLE trading_ledgerentry {} TRIGGER trading_ledgerentry_link"

    def python_run(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute(trigger.format("DISABLE"))
        try:
            with (
                mock.patch.object(services, "_trades_in_database", return_value=False),
                mock.patch.object(market, "_trades_in_database", return_value=False),
            ):
                return run(*args, **kwargs)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(trigger.format("ENABLE"))

    return python_run


def differences(database: dict, python: dict) -> list[str]:
    """Every row and column where the two runs differ, named."""
    found = []
    for table, rows in database.items():
        others = python[table]
        for pk in sorted(rows.keys() | others.keys()):
            if pk not in others:
                found.append(f"{table} row {pk}: only in the database run")
            elif pk not in rows:
                found.append(f"{table} row {pk}: only in the Python run")
            else:
                found += [
                    f"{table} row {pk} column {column}: database "
                    f"{rows[pk][column]!r}, Python {others[pk][column]!r}"
                    for column in rows[pk]
                    if rows[pk][column] != others[pk][column]
                ]
    return found


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=SEQUENCES)
@example(sequence=EVERY_STEP)
def test_python_and_postgresql_ledgers_write_the_same_rows(sequence):
    clock, in_database = _run(sequence, clock=None)
    _same_clock, in_python = _in_python(_run)(sequence, clock=clock)
    assert differences(in_database, in_python) == []


def test_every_step_sequence_moves_credits_every_way():
    """The fixed example above reaches every kind of journal entry, the
    market's four among them, and every way an order ends."""
    _clock, rows = _run(EVERY_STEP, clock=None)
    kinds = {entry["kind"] for entry in rows["trading_ledgerentry"].values()}
    assert {"list", "delist", "order", "return"} <= kinds
    assert kinds == set(LedgerEntry.Kind.values)
    requests = rows["trading_traderequest"]
    orders = rows["trading_order"].values()
    ends = {
        (requests[order["trade_request_id"]]["status"], order["retire_on_delivery"])
        for order in orders
    }
    assert ends == {
        ("settled", True),
        ("settled", False),
        ("declined", False),
        ("rejected", False),
        ("expired", False),
    }
    statuses = {listing["status"] for listing in rows["trading_listing"].values()}
    assert statuses == {"withdrawn", "expired"}


def test_a_difference_is_named_by_table_row_and_column():
    database = {"trading_creditblock": {1: {"id": 1, "state": "active"}}}
    python = {"trading_creditblock": {1: {"id": 1, "state": "reserved"}, 2: {"id": 2}}}
    assert differences(database, python) == [
        "trading_creditblock row 1 column state: database 'active', Python 'reserved'",
        "trading_creditblock row 2: only in the Python run",
    ]
