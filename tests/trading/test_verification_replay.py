"""verify_ledger replays the journal and compares it with the credit blocks
(design section 5, invariant 8), in one consistent snapshot. Each tampering
below keeps whatever the older checks look at intact (totals per batch,
tiling, the hash chain re-computed), so only the replay can see it."""

import random
import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from registry.models import Account
from tests.trading.conftest import new_key
from tests.trading.tampering import (
    delete_entry_and_renumber,
    guards_lifted,
    rehash_from,
)
from trading import services, verification
from trading.models import CreditBlock, LedgerCheck, LedgerEntry, TradeRequest
from trading.replay import BatchReplay, differing_runs
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


def _transfer(seller, seller_account, buyer_account, quantity=100):
    return services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=quantity,
        price_per_tonne="80",
        idempotency_key=new_key(),
    )


def _by_check(report) -> dict[str, list[dict]]:
    found = {}
    for violation in report.violations:
        found.setdefault(violation["check"], []).append(violation)
    return found


def _holdings(report) -> set[tuple]:
    return {
        (v["account"], v["batch"], v["state"], v["expected"], v["found"])
        for v in _by_check(report).get("holding", [])
    }


# The replay itself (pure) -------------------------------------------------------


def test_replaying_a_batch_follows_every_kind_of_entry():
    replay = BatchReplay()
    steps = [
        ("issue", 1, 900, None, 1),
        ("buffer", 901, 1000, None, 9),
        ("reserve", 1, 300, 1, 1),
        ("transfer", 1, 300, 1, 2),
        ("reserve", 301, 350, 1, 1),
        ("release", 301, 350, 1, 1),
        ("reserve", 1, 10, 2, 2),
        ("retire", 1, 10, 2, 7),
        ("reserve", 901, 905, 9, 9),
        ("cancel", 901, 905, 9, 8),
    ]
    for sequence, (kind, first, last, source, target) in enumerate(steps, 1):
        assert (
            replay.apply(
                sequence=sequence,
                kind=kind,
                first=first,
                last=last,
                from_account=source,
                to_account=target,
            )
            == []
        )
    assert replay.holdings() == {
        (1, "active"): 600,
        (2, "active"): 290,
        (7, "retired"): 10,
        (9, "active"): 95,
        (8, "cancelled"): 5,
    }


def test_an_entry_moving_serials_from_where_they_are_not_is_a_misstep():
    replay = BatchReplay()
    replay.apply(
        sequence=1, kind="issue", first=1, last=100, from_account=None, to_account=1
    )
    # A transfer of serials never reserved, reaching past the batch's serials.
    (held, unissued) = replay.apply(
        sequence=2, kind="transfer", first=51, last=120, from_account=1, to_account=2
    )
    assert (held.first, held.last, held.claimed, held.held) == (
        51,
        100,
        (1, "reserved"),
        (1, "active"),
    )
    assert (unissued.first, unissued.last, unissued.held) == (101, 120, None)
    assert replay.holdings() == {(1, "active"): 50, (2, "active"): 70}
    (unknown,) = replay.apply(
        sequence=3, kind="mint", first=1, last=1, from_account=None, to_account=1
    )
    assert not unknown.kind_known


def test_serial_runs_compare_by_serial_not_by_block():
    expected = [(1, 50, (1, "active")), (51, 100, (1, "active"))]
    assert differing_runs(expected, [(1, 100, (1, "active"))]) == []
    assert differing_runs(
        expected, [(1, 40, (1, "active")), (41, 90, (2, "active"))]
    ) == [
        (41, 90, (1, "active"), (2, "active")),
        (91, 100, (1, "active"), None),
    ]


# The audit on the database (SQLite and PostgreSQL) ------------------------------


def test_a_block_moved_to_another_account_names_both_accounts_batch_and_tonnes(
    issue, seller_account, buyer_account
):
    batch = issue()  # seller 1-900, buffer pool 901-1000
    assert verify_ledger(record=False).ok
    with guards_lifted() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET account_id = %s "
            "WHERE batch_id = %s AND first_serial = 1",
            [buyer_account.pk, batch.pk],
        )
    report = verify_ledger()
    found = _by_check(report)
    assert set(found) == {"holding", "serials"}  # totals and tiling still hold
    assert _holdings(report) == {
        (seller_account.number, batch.pk, "active", 900, 0),
        (buyer_account.number, batch.pk, "active", 0, 900),
    }
    assert [
        (v["first_serial"], v["last_serial"], v["tonnes"], v["expected"], v["found"])
        for v in found["serials"]
    ] == [
        (
            1,
            900,
            900,
            {"account": seller_account.number, "state": "active"},
            {"account": buyer_account.number, "state": "active"},
        )
    ]
    assert not LedgerCheck.objects.latest("ran_at").ok
    with pytest.raises(CommandError, match="violation"):
        call_command("verify_ledger")


def test_the_command_prints_the_violations_naming_the_account(
    issue, seller_account, buyer_account, capsys
):
    batch = issue()
    with guards_lifted() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET account_id = %s WHERE batch_id = %s "
            "AND first_serial = 1",
            [buyer_account.pk, batch.pk],
        )
    with pytest.raises(CommandError):
        call_command("verify_ledger")
    errors = capsys.readouterr().err
    assert f'"account": "{buyer_account.number}"' in errors
    assert '"expected": 0, "found": 900' in errors


def test_a_changed_block_quantity_is_detected_though_the_batch_still_adds_up(
    issue, seller_account
):
    batch = issue()  # seller 1-900, buffer pool 901-1000
    buffer_account = Account.objects.get(kind=Account.Kind.BUFFER_POOL)
    with guards_lifted() as cursor:
        # Ten tonnes slide from the seller's block to the buffer pool's.
        cursor.execute(
            "UPDATE trading_creditblock SET last_serial = 890, quantity = 890 "
            "WHERE batch_id = %s AND first_serial = 1",
            [batch.pk],
        )
        cursor.execute(
            "UPDATE trading_creditblock SET first_serial = 891, quantity = 110 "
            "WHERE batch_id = %s AND first_serial = 901",
            [batch.pk],
        )
    report = verify_ledger(record=False)
    assert set(_by_check(report)) == {"holding", "serials"}
    assert _holdings(report) == {
        (seller_account.number, batch.pk, "active", 900, 890),
        (buffer_account.number, batch.pk, "active", 100, 110),
    }
    (serials,) = _by_check(report)["serials"]
    assert (serials["first_serial"], serials["last_serial"], serials["tonnes"]) == (
        891,
        900,
        10,
    )


def test_an_entry_rewritten_and_rehashed_is_detected(
    issue, seller, seller_account, buyer_account, admin
):
    batch = issue()
    request = _transfer(seller, seller_account, buyer_account, quantity=100)
    services.approve_request(actor=admin, request=request)
    transfer = LedgerEntry.objects.get(kind="transfer")
    with guards_lifted():
        # The journal now says only 60 t went to the buyer.
        LedgerEntry.objects.filter(pk=transfer.pk).update(
            last_serial=transfer.first_serial + 59, quantity=60
        )
        rehash_from(transfer.sequence)
    report = verify_ledger(record=False)
    found = _by_check(report)
    assert "hash_chain" not in found  # the chain was made whole again
    assert _holdings(report) == {
        (buyer_account.number, batch.pk, "active", 60, 100),
        (seller_account.number, batch.pk, "reserved", 40, 0),
    }


def test_a_deleted_entry_is_detected_even_with_the_chain_renumbered(
    issue, seller, seller_account, buyer_account, admin
):
    batch = issue()
    request = _transfer(seller, seller_account, buyer_account)
    services.approve_request(actor=admin, request=request)
    services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=5,
        beneficiary="某公司",
        purpose="voluntary",
        reporting_year=2026,
        idempotency_key=new_key(),
    )
    transfer = LedgerEntry.objects.get(kind="transfer")
    with guards_lifted():
        delete_entry_and_renumber(transfer.sequence)
    report = verify_ledger(record=False)
    found = _by_check(report)
    assert "hash_chain" not in found
    assert _holdings(report) == {
        (buyer_account.number, batch.pk, "active", 0, 100),
        # The 5 t reserved for the retirement, and the 100 t never transferred.
        (seller_account.number, batch.pk, "reserved", 105, 5),
    }
    assert list(LedgerEntry.objects.values_list("sequence", "kind")) == [
        (1, "issue"),
        (2, "buffer"),
        (3, "reserve"),
        (4, "reserve"),
    ]


def test_an_inserted_entry_is_detected_even_with_a_valid_link(
    issue, seller_account, buyer_account, admin
):
    batch = issue()
    last = LedgerEntry.objects.order_by("-sequence").first()
    with guards_lifted():
        # Credits the blocks never received, linked into the chain properly.
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    sequence=last.sequence + 1,
                    kind="transfer",
                    batch=batch,
                    first_serial=1,
                    last_serial=50,
                    quantity=50,
                    from_account=seller_account,
                    to_account=buyer_account,
                    actor=admin,
                    created_at=timezone.now(),
                    content_hash="x",
                    previous_hash="x",
                    entry_hash="inserted",
                )
            ]
        )
        rehash_from(last.sequence + 1)
    report = verify_ledger(record=False)
    found = _by_check(report)
    assert "hash_chain" not in found
    assert _holdings(report) == {
        (seller_account.number, batch.pk, "active", 850, 900),
        (buyer_account.number, batch.pk, "active", 50, 0),
    }
    (misstep,) = found["journal"]
    assert (misstep["sequence"], misstep["tonnes"]) == (3, 50)
    assert misstep["moves_from"] == {
        "account": seller_account.number,
        "state": "reserved",
    }
    assert misstep["journal_had_them_at"] == {
        "account": seller_account.number,
        "state": "active",
    }


def test_a_journal_cut_short_with_its_head_rewound_is_detected(
    issue, seller, seller_account, buyer_account, admin
):
    batch = issue()
    request = _transfer(seller, seller_account, buyer_account)
    services.approve_request(actor=admin, request=request)
    with guards_lifted():
        LedgerEntry.objects.filter(kind="transfer").delete()  # the last entry
        rehash_from(LedgerEntry.objects.count() + 1)  # rewinds the head
    report = verify_ledger(record=False)
    found = _by_check(report)
    assert "hash_chain" not in found
    assert _holdings(report) == {
        (seller_account.number, batch.pk, "reserved", 100, 0),
        (buyer_account.number, batch.pk, "active", 0, 100),
    }


def test_a_clean_ledger_after_many_random_operations_passes(
    issue, seller, seller_account, buyer, buyer_account, admin, second_admin
):
    chooser = random.Random(20260713)
    for _ in range(4):
        issue(quantity=chooser.randint(50, 3000), buffer=chooser.randint(0, 40))
    pending = []
    holders = [(seller, seller_account), (buyer, buyer_account)]
    for step in range(120):
        action = chooser.choice(["transfer", "retire", "cancel", "review", "review"])
        user, account = holders[chooser.randint(0, 1)]
        other = buyer_account if account == seller_account else seller_account
        quantity = chooser.randint(1, 400)
        try:
            if action == "transfer":
                pending.append(_transfer(user, account, other, quantity))
            elif action == "retire":
                pending.append(
                    services.request_retirement(
                        actor=user,
                        from_account=account,
                        quantity=quantity,
                        beneficiary="某公司",
                        purpose="voluntary",
                        reporting_year=2026,
                        idempotency_key=new_key(),
                    )
                )
            elif action == "cancel":
                pending.append(
                    services.request_cancellation(
                        actor=admin,
                        from_account=account,
                        quantity=quantity,
                        note="reversal",
                        idempotency_key=new_key(),
                    )
                )
            elif pending:
                request = pending.pop(chooser.randrange(len(pending)))
                reviewer = second_admin if request.initiator_id == admin.pk else admin
                if chooser.random() < 0.7:
                    services.approve_request(actor=reviewer, request=request)
                else:
                    services.reject_request(
                        actor=reviewer, request=request, reason="no"
                    )
        except ValidationError:
            pass  # not enough credits: refused, nothing changed
        if step == 80:
            services.expire_stale_requests(now=timezone.now() + timedelta(days=30))
            pending = []
    report = verify_ledger()
    assert report.ok, report.violations[:5]
    assert report.entries > 80 and report.blocks > 20
    states = CreditBlock.objects.values_list("state", flat=True).distinct()
    assert {"active", "retired", "cancelled"} <= set(states)
    assert LedgerCheck.objects.latest("ran_at").ok


# One consistent snapshot ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_whole_check_reads_one_snapshot_and_records_after_it(
    reference_data, issue, monkeypatch
):
    issue()
    seen = []
    original = verification._check_reservations

    def inside(report):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW transaction_isolation")
                isolation = cursor.fetchone()[0]
                cursor.execute("SHOW transaction_read_only")
                seen.append((isolation, cursor.fetchone()[0]))
        else:
            seen.append(connection.connection.in_transaction)
        original(report)

    monkeypatch.setattr(verification, "_check_reservations", inside)
    assert not connection.in_atomic_block
    assert verify_ledger().ok  # recorded: outside the read-only transaction
    expected = ("repeatable read", "on") if connection.vendor == "postgresql" else True
    assert seen == [expected]
    assert LedgerCheck.objects.count() == 1
    if connection.vendor == "sqlite":
        assert not connection.connection.in_transaction


def _settle_from_another_connection(request, reviewer):
    """Approve the request on a connection of its own, committed before this
    returns: a trade that lands while the check is half-way through."""
    errors = []

    def approve():
        try:
            services.approve_request(actor=reviewer, request=request)
        except Exception as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=approve)
    thread.start()
    thread.join(timeout=30)
    assert not errors and not thread.is_alive()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs a second writer beside a reader (PostgreSQL)",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("snapshot", [True, False])
def test_a_trade_settled_during_the_check_gives_no_false_violation(
    reference_data,
    issue,
    seller,
    seller_account,
    buyer_account,
    admin,
    monkeypatch,
    snapshot,
):
    issue()
    request = _transfer(seller, seller_account, buyer_account)
    original = verification._journal_rows

    def journal_after_a_settlement():
        # The blocks are being read already; now the trade settles, then the
        # journal is read.
        _settle_from_another_connection(request, admin)
        return original()

    monkeypatch.setattr(verification, "_journal_rows", journal_after_a_settlement)
    if not snapshot:  # the control: without the snapshot the race shows
        monkeypatch.setattr(verification, "read_snapshot", nullcontext)
    report = verify_ledger(record=False)
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    if snapshot:
        assert report.ok, report.violations
        assert report.by_state["reserved"] == 100  # as it was when the check began
    else:
        assert "holding" in {violation["check"] for violation in report.violations}
    monkeypatch.undo()
    assert verify_ledger(record=False).ok
