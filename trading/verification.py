"""Checks every ledger invariant that can be checked after the fact, and records
the result (``LedgerCheck``). Used by ``manage.py verify_ledger`` and a nightly
beat task.

1. Conservation per batch: issued = active + reserved + retired + cancelled.
2. Each batch's blocks tile its serial range: no gap, no overlap.
3. Reserved blocks belong to pending requests; settled requests hold none.
4. The journal's hash chain: every entry's hash recomputes, links to the one
   before, and the sequence has no holes.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from registry.models import CreditBatch
from trading import chain
from trading.models import (
    CreditBlock,
    LedgerCheck,
    LedgerEntry,
    LedgerHead,
    TradeRequest,
)
from trading.serials import gaps_and_overlaps

CHUNK = 5000


@dataclass
class LedgerReport:
    batches: int = 0
    blocks: int = 0
    entries: int = 0
    issued: int = 0
    by_state: dict = field(default_factory=dict)
    violations: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> dict:
        return {
            "batches": self.batches,
            "blocks": self.blocks,
            "entries": self.entries,
            "issued": self.issued,
            "by_state": self.by_state,
        }


def _check_batches(report: LedgerReport) -> None:
    ranges = defaultdict(list)
    for batch_id, first, last in CreditBlock.objects.values_list(
        "batch_id", "first_serial", "last_serial"
    ).iterator(chunk_size=CHUNK):
        ranges[batch_id].append((first, last))
        report.blocks += 1
    for batch in CreditBatch.objects.only(
        "id", "quantity", "first_serial", "last_serial"
    ):
        report.batches += 1
        report.issued += batch.quantity
        held = sum(last - first + 1 for first, last in ranges.get(batch.pk, []))
        if held != batch.quantity:
            report.violations.append(
                {
                    "check": "conservation",
                    "batch": batch.pk,
                    "issued": batch.quantity,
                    "in_blocks": held,
                }
            )
        gaps, overlaps = gaps_and_overlaps(
            ranges.get(batch.pk, []), batch.first_serial, batch.last_serial
        )
        if gaps or overlaps:
            report.violations.append(
                {
                    "check": "tiling",
                    "batch": batch.pk,
                    "gaps": gaps,
                    "overlaps": overlaps,
                }
            )
    totals = CreditBlock.objects.values("state").annotate(total=Sum("quantity"))
    report.by_state = dict.fromkeys(CreditBlock.State.values, 0)
    report.by_state.update({row["state"]: row["total"] for row in totals})


def _check_reservations(report: LedgerReport) -> None:
    stray = (
        CreditBlock.objects.filter(state=CreditBlock.State.RESERVED)
        .exclude(trade_request__status=TradeRequest.Status.PENDING)
        .values("trade_request")
        .annotate(blocks=Count("id"))
    )
    for row in stray:
        report.violations.append(
            {
                "check": "reservation",
                "request": row["trade_request"],
                "blocks": row["blocks"],
            }
        )


def _check_chain(report: LedgerReport) -> None:
    previous_hash, expected_sequence = chain.GENESIS, 1
    for entry in LedgerEntry.objects.order_by("sequence").iterator(chunk_size=CHUNK):
        report.entries += 1
        problems = []
        if entry.sequence != expected_sequence:
            problems.append(f"sequence {entry.sequence}, expected {expected_sequence}")
        if entry.previous_hash != previous_hash:
            problems.append("does not link to the entry before")
        if chain.content_hash(entry.payload()) != entry.content_hash:
            problems.append("its content hash does not match its contents")
        link = chain.link_hash(entry.previous_hash, entry.sequence, entry.content_hash)
        if link != entry.entry_hash:
            problems.append("its hash does not match its link")
        if problems:
            report.violations.append(
                {
                    "check": "hash_chain",
                    "sequence": entry.sequence,
                    "problems": problems,
                }
            )
        previous_hash, expected_sequence = entry.entry_hash, entry.sequence + 1
    # The head remembers the last entry, so a journal cut short shows too.
    head = LedgerHead.objects.filter(pk=1).first()
    last = (expected_sequence - 1, previous_hash)
    if head is not None and (head.last_sequence, head.last_hash) != last:
        report.violations.append(
            {
                "check": "hash_chain",
                "sequence": head.last_sequence,
                "problems": ["the journal ends before the head's last entry"],
            }
        )


def verify_ledger(*, record: bool = True) -> LedgerReport:
    report = LedgerReport()
    _check_batches(report)
    _check_reservations(report)
    _check_chain(report)
    if record:
        LedgerCheck.objects.create(
            ok=report.ok, summary=report.summary(), violations=report.violations[:1000]
        )
    return report
