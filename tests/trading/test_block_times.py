"""A block's ``updated_at`` is the time of the step that last moved it, the
same time as that step's journal entry, on both ledger paths (it used to stay
at issuance on SQLite while PostgreSQL's functions stamped it). The clock
moves on between steps so a stale stamp shows; on PostgreSQL every step of
this test shares the test transaction's now(), and test_differential.py
compares the two paths step by step."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from tests.trading.conftest import new_key
from trading import services
from trading.models import CreditBlock, LedgerEntry

pytestmark = pytest.mark.django_db

# Now, not a fixed date: on PostgreSQL the settle function compares expiry
# with the database's own clock.
START = datetime.now(UTC)


def _at(minutes: int):
    return mock.patch(
        "django.utils.timezone.now", return_value=START + timedelta(minutes=minutes)
    )


def _request(seller, seller_account, buyer_account, quantity):
    return services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=quantity,
        price_per_tonne="95.70",
        idempotency_key=new_key(),
    )


def _stamps(request, kind):
    entries = LedgerEntry.objects.filter(trade_request=request, kind=kind)
    return {(entry.batch_id, entry.first_serial): entry.created_at for entry in entries}


def _block_times(serials):
    return {
        (block.batch_id, block.first_serial): block.updated_at
        for block in CreditBlock.objects.all()
        if (block.batch_id, block.first_serial) in serials
    }


def test_reserving_settling_and_releasing_stamp_the_blocks_they_move(
    issue, seller, seller_account, buyer_account, admin
):
    with _at(0):
        issue(quantity=1000, buffer=100)
    with _at(1):
        settled = _request(seller, seller_account, buyer_account, quantity=250)
        rejected = _request(seller, seller_account, buyer_account, quantity=650)
    reserved = _stamps(settled, "reserve") | _stamps(rejected, "reserve")
    assert len(reserved) == 2
    assert _block_times(reserved) == reserved

    with _at(2):
        services.approve_request(actor=admin, request=settled)
    moved = _stamps(settled, "transfer")
    assert _block_times(moved) == moved
    (stamp,) = set(moved.values())
    settled.refresh_from_db()
    assert stamp == settled.reviewed_at

    with _at(3):
        services.reject_request(actor=admin, request=rejected, reason="price")
    released = _stamps(rejected, "release")
    assert _block_times(released) == released
