"""Checks every ledger invariant that can be checked after the fact, and records
the result (``LedgerCheck``). Used by ``manage.py verify_ledger`` and a nightly
beat task.

1. Conservation per batch: issued = active + reserved + retired + cancelled.
2. Each batch's blocks tile its serial range: no gap, no overlap.
3. The journal replayed gives the blocks (design section 5, invariant 8): the
   journal's entries, replayed in order (``trading.replay``), put every serial
   of every batch in some account and state; the credit blocks must say the
   same. Differences are reported twice over: tonnes per account, batch and
   state ("holding"), and the serial runs that differ ("serials"). Entries
   that move serials from where the journal before them did not put them are
   reported too ("journal").
4. Reserved blocks belong to open requests (pending, or an order awaiting
   payment); settled requests hold none; and no request past its expiry (by
   more than ``EXPIRY_GRACE``) still holds reserved credits
   ("expired_reservation").
   The market: every listing's listed blocks hold exactly its quantity left,
   of its own batch and seller ("listing"); every open order's request holds
   exactly the quantity ordered ("order").
5. The journal's hash chain: every entry's hash recomputes, links to the one
   before, and the sequence has no holes.
6. Every head the registry published (``JournalAnchor``) is signed by one of
   its keys and still matches the journal's entry at its sequence.

``check_anchor`` checks one published head that someone kept (the public page,
the API and ``verify_ledger --anchor``).

Everything is read in one consistent snapshot (``read_snapshot``), so a trade
committed while the check runs is either wholly seen or not at all. Memory is
bounded by the largest batch's blocks: batches, blocks and entries are streamed
in batch order side by side.
"""

import base64
import binascii
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from operator import itemgetter

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import field_error
from registry.models import Account
from trading import chain
from trading.anchors import signed_by_registry, trusted_public_keys
from trading.models import (
    CreditBatch,
    CreditBlock,
    JournalAnchor,
    LedgerCheck,
    LedgerEntry,
    LedgerHead,
    Listing,
    Order,
    TradeRequest,
)
from trading.replay import BatchReplay, differing_runs
from trading.serials import gaps_and_overlaps

CHUNK = 5000
# The expiry task runs every five minutes, and any step on an account releases
# its expired requests: one past its expiry by less than this may just not have
# met either yet.
EXPIRY_GRACE = timedelta(minutes=15)


@contextmanager
def read_snapshot():
    """Read everything inside in one consistent view of the database: on
    PostgreSQL a REPEATABLE READ, READ ONLY transaction; on SQLite one
    deferred read transaction (WAL gives it a snapshot from its first read,
    and, unlike the IMMEDIATE transactions writes use, it takes no write lock,
    so trades go on during the check). Inside a caller's transaction, that
    transaction is the snapshot."""
    if connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
            yield
    elif connection.vendor == "sqlite":
        # Django's atomic() would BEGIN IMMEDIATE (the project's setting) and
        # lock writers out for the whole check; a plain BEGIN only reads.
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")  # it only read: nothing to keep
    else:
        with transaction.atomic():
            yield


@dataclass
class LedgerReport:
    batches: int = 0
    blocks: int = 0
    entries: int = 0
    issued: int = 0
    by_state: dict = field(default_factory=dict)
    violations: list = field(default_factory=list)
    check_id: int | None = None  # the LedgerCheck recording it, if recorded

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


class _ByBatch:
    """Rows streamed in batch order (batch id first in each row), handed out
    one batch's rows at a time."""

    def __init__(self, rows: Iterator[tuple]):
        self._groups = itertools.groupby(rows, key=itemgetter(0))
        self._next = next(self._groups, None)
        self.orphans = 0  # rows of batches that do not exist

    def take(self, batch_id: int) -> Iterator[tuple]:
        while self._next is not None and self._next[0] < batch_id:
            self.orphans += sum(1 for _row in self._next[1])
            self._next = next(self._groups, None)
        if self._next is None or self._next[0] != batch_id:
            return iter(())
        rows, self._next = self._next[1], None
        return rows

    def advance(self) -> None:
        """Step past the batch just taken (its rows must have been consumed)."""
        if self._next is None:
            self._next = next(self._groups, None)

    def finish(self) -> int:
        while self._next is not None:
            self.orphans += sum(1 for _row in self._next[1])
            self._next = next(self._groups, None)
        return self.orphans


def _batch_rows() -> Iterator[tuple]:
    return (
        CreditBatch.objects.order_by("pk")
        .values_list("pk", "quantity", "first_serial", "last_serial")
        .iterator(chunk_size=CHUNK)
    )


def _block_rows() -> Iterator[tuple]:
    return (
        CreditBlock.objects.order_by("batch_id", "first_serial", "pk")
        .values_list("batch_id", "first_serial", "last_serial", "account_id", "state")
        .iterator(chunk_size=CHUNK)
    )


def _journal_rows() -> Iterator[tuple]:
    return (
        LedgerEntry.objects.order_by("batch_id", "sequence")
        .values_list(
            "batch_id",
            "sequence",
            "kind",
            "first_serial",
            "last_serial",
            "from_account_id",
            "to_account_id",
        )
        .iterator(chunk_size=CHUNK)
    )


@dataclass
class _Differences:
    """Replay findings with account ids, named once the walk is over."""

    holdings: list = field(default_factory=list)
    serials: list = field(default_factory=list)
    journal: list = field(default_factory=list)

    def accounts(self) -> set[int]:
        ids = set()
        for _batch, (account, _state), *_rest in self.holdings:
            ids.add(account)
        for _batch, _first, _last, *holdings in self.serials:
            ids.update(holding[0] for holding in holdings if holding)
        for _batch, _kind, misstep in self.journal:
            ids.update(h[0] for h in (misstep.claimed, misstep.held) if h)
        return ids


def _replay_batch(batch_id: int, entries, blocks: list[tuple], found) -> None:
    replay = BatchReplay()
    for _batch, sequence, kind, first, last, from_account, to_account in entries:
        for misstep in replay.apply(
            sequence=sequence,
            kind=kind,
            first=first,
            last=last,
            from_account=from_account,
            to_account=to_account,
        ):
            found.journal.append((batch_id, kind, misstep))
    in_blocks = Counter()
    for _batch, first, last, account, state in blocks:
        in_blocks[(account, state)] += last - first + 1
    in_journal = replay.holdings()
    for holding in sorted(set(in_journal) | set(in_blocks)):
        if in_journal[holding] != in_blocks[holding]:
            found.holdings.append(
                (batch_id, holding, in_journal[holding], in_blocks[holding])
            )
    for first, last, wanted, held in differing_runs(
        replay.runs(),
        [(first, last, (account, state)) for _b, first, last, account, state in blocks],
    ):
        found.serials.append((batch_id, first, last, wanted, held))


def _check_batches(report: LedgerReport) -> None:
    """Conservation, tiling and the journal's replay, one batch at a time."""
    blocks_by_batch = _ByBatch(_block_rows())
    entries_by_batch = _ByBatch(_journal_rows())
    found = _Differences()
    for batch_id, quantity, batch_first, batch_last in _batch_rows():
        report.batches += 1
        report.issued += quantity
        blocks = list(blocks_by_batch.take(batch_id))
        blocks_by_batch.advance()
        report.blocks += len(blocks)
        ranges = [(first, last) for _b, first, last, _a, _s in blocks]
        held = sum(last - first + 1 for first, last in ranges)
        if held != quantity:
            report.violations.append(
                {
                    "check": "conservation",
                    "batch": batch_id,
                    "issued": quantity,
                    "in_blocks": held,
                }
            )
        gaps, overlaps = gaps_and_overlaps(ranges, batch_first, batch_last)
        if gaps or overlaps:
            report.violations.append(
                {
                    "check": "tiling",
                    "batch": batch_id,
                    "gaps": gaps,
                    "overlaps": overlaps,
                }
            )
        _replay_batch(batch_id, entries_by_batch.take(batch_id), blocks, found)
        entries_by_batch.advance()
    # Foreign keys make these impossible; counted rather than assumed.
    for name, stream in (("blocks", blocks_by_batch), ("entries", entries_by_batch)):
        if stream.finish():
            report.violations.append(
                {"check": "orphans", name: stream.orphans, "problem": "no such batch"}
            )
    _name_differences(report, found)
    totals = CreditBlock.objects.values("state").annotate(total=Sum("quantity"))
    report.by_state = dict.fromkeys(CreditBlock.State.values, 0)
    report.by_state.update({row["state"]: row["total"] for row in totals})


def _name_differences(report: LedgerReport, found: _Differences) -> None:
    numbers = dict(
        Account.objects.filter(pk__in=found.accounts()).values_list("pk", "number")
    )

    def holder(holding) -> dict | None:
        if holding is None:
            return None
        account, state = holding
        return {"account": numbers.get(account, f"#{account}"), "state": state}

    for batch_id, (account, state), in_journal, in_blocks in found.holdings:
        report.violations.append(
            {
                "check": "holding",
                "account": numbers.get(account, f"#{account}"),
                "batch": batch_id,
                "state": state,
                "expected": in_journal,  # tonnes, from the journal
                "found": in_blocks,  # tonnes, in the credit blocks
            }
        )
    for batch_id, first, last, wanted, held in found.serials:
        report.violations.append(
            {
                "check": "serials",
                "batch": batch_id,
                "first_serial": first,
                "last_serial": last,
                "tonnes": last - first + 1,
                "expected": holder(wanted),
                "found": holder(held),
            }
        )
    for batch_id, kind, misstep in found.journal:
        violation = {
            "check": "journal",
            "sequence": misstep.sequence,
            "kind": kind,
            "batch": batch_id,
            "first_serial": misstep.first,
            "last_serial": misstep.last,
        }
        if misstep.kind_known:
            violation["tonnes"] = misstep.last - misstep.first + 1
            violation["moves_from"] = holder(misstep.claimed)
            violation["journal_had_them_at"] = holder(misstep.held)
        else:
            violation["problem"] = "unknown kind or empty range"
        report.violations.append(violation)


def _check_reservations(report: LedgerReport) -> None:
    stray = (
        CreditBlock.objects.filter(state=CreditBlock.State.RESERVED)
        .exclude(trade_request__status__in=TradeRequest.OPEN_STATUSES)
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


def _check_expired_reservations(report: LedgerReport) -> None:
    """Reservations outliving their request: pending past its expiry, still
    holding credits that nothing released."""
    overdue = (
        CreditBlock.objects.filter(
            state=CreditBlock.State.RESERVED,
            trade_request__status__in=TradeRequest.OPEN_STATUSES,
            trade_request__expires_at__lte=timezone.now() - EXPIRY_GRACE,
        )
        .values("trade_request", "trade_request__kind", "trade_request__expires_at")
        .annotate(tonnes=Sum("quantity"))
        .order_by("trade_request")
    )
    for row in overdue:
        report.violations.append(
            {
                "check": "expired_reservation",
                "request": row["trade_request"],
                "kind": row["trade_request__kind"],
                "quantity": row["tonnes"],  # tonnes still reserved
                "expired_since": row["trade_request__expires_at"].isoformat(),
            }
        )


def _check_listings(report: LedgerReport) -> None:
    """Listed = left, per listing: what its blocks hold in the state
    ``listed`` is exactly its quantity left (0 once closed), all of its own
    batch and in its seller's account."""
    held = {
        row["listing"]: row
        for row in CreditBlock.objects.filter(state=CreditBlock.State.LISTED)
        .values("listing")
        .annotate(tonnes=Sum("quantity"), blocks=Count("id"))
    }
    foreign = dict(
        CreditBlock.objects.filter(state=CreditBlock.State.LISTED)
        .exclude(batch_id=F("listing__batch_id"), account_id=F("listing__account_id"))
        .values("listing")
        .annotate(blocks=Count("id"))
        .values_list("listing", "blocks")
    )
    listings = Listing.objects.filter(
        Q(pk__in=list(held)) | Q(quantity_left__gt=0)
    ).values_list("pk", "quantity_left")
    for listing_id, left in listings.iterator(chunk_size=CHUNK):
        tonnes = held.get(listing_id, {}).get("tonnes", 0)
        if tonnes != left or foreign.get(listing_id):
            violation = {
                "check": "listing",
                "listing": listing_id,
                "quantity_left": left,
                "listed": tonnes,
            }
            if foreign.get(listing_id):
                violation["blocks_of_another_batch_or_account"] = foreign[listing_id]
            report.violations.append(violation)


def _check_orders(report: LedgerReport) -> None:
    """Reserved = ordered, per open order: its request holds exactly the
    quantity ordered until it settles or returns (when it holds nothing,
    which ``_check_reservations`` checks)."""
    short = (
        Order.objects.filter(trade_request__status__in=TradeRequest.OPEN_STATUSES)
        .annotate(
            reserved=Coalesce(
                Sum(
                    "trade_request__blocks__quantity",
                    filter=Q(trade_request__blocks__state=CreditBlock.State.RESERVED),
                ),
                0,
            )
        )
        .exclude(reserved=F("trade_request__quantity"))
        .values_list("pk", "trade_request_id", "trade_request__quantity", "reserved")
    )
    for order_id, request_id, ordered, reserved in short:
        report.violations.append(
            {
                "check": "order",
                "order": order_id,
                "request": request_id,
                "ordered": ordered,
                "reserved": reserved,
            }
        )


def walk_chain() -> Iterator[tuple[LedgerEntry, list[str]]]:
    """Every entry in sequence order with what is wrong with its place in the
    chain (empty if nothing): its sequence, its link to the entry before, its
    content hash and its own hash, all recomputed."""
    previous_hash, expected_sequence = chain.GENESIS, 1
    for entry in LedgerEntry.objects.order_by("sequence").iterator(chunk_size=CHUNK):
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
        yield entry, problems
        previous_hash, expected_sequence = entry.entry_hash, entry.sequence + 1


def head_problem(last_sequence: int, last_hash: str) -> str | None:
    """Whether the head row remembers the journal's last entry (so a journal
    cut short shows even though what is left of it chains)."""
    head = LedgerHead.objects.filter(pk=1).first()
    if head is not None and (head.last_sequence, head.last_hash) != (
        last_sequence,
        last_hash,
    ):
        return "the journal ends before the head's last entry"
    return None


def _check_chain(report: LedgerReport) -> None:
    anchors = list(JournalAnchor.objects.order_by("sequence", "pk"))
    anchored = {anchor.sequence for anchor in anchors}
    hashes_now = {}
    last = (0, chain.GENESIS)
    for entry, problems in walk_chain():
        report.entries += 1
        if problems:
            report.violations.append(
                {
                    "check": "hash_chain",
                    "sequence": entry.sequence,
                    "problems": problems,
                }
            )
        if entry.sequence in anchored:
            hashes_now[entry.sequence] = entry.entry_hash
        last = (entry.sequence, entry.entry_hash)
    problem = head_problem(*last)
    if problem:
        head = LedgerHead.objects.get(pk=1)
        report.violations.append(
            {
                "check": "hash_chain",
                "sequence": head.last_sequence,
                "problems": [problem],
            }
        )
    _check_published_heads(report, anchors, hashes_now)


def _check_published_heads(report: LedgerReport, anchors, hashes_now: dict) -> None:
    """The registry's own record of what it published, against the journal:
    rewriting the journal and these rows alike needs the signing key."""
    trusted = trusted_public_keys()
    for anchor in anchors:
        problems = []
        if anchor.key_id not in trusted:
            problems.append("not signed by one of the registry's keys")
        elif not signed_by_registry(anchor, trusted):
            problems.append("its signature does not match it")
        now = hashes_now.get(anchor.sequence)
        if now is None:
            problems.append("the journal has no entry at its sequence")
        elif now != anchor.entry_hash:
            problems.append("the journal's entry at its sequence has another hash")
        if problems:
            report.violations.append(
                {
                    "check": "published_head",
                    "sequence": anchor.sequence,
                    "published_at": chain.head_time(anchor.published_at),
                    "problems": problems,
                }
            )


def verify_ledger(*, record: bool = True) -> LedgerReport:
    report = LedgerReport()
    with read_snapshot():
        _check_batches(report)
        _check_reservations(report)
        _check_expired_reservations(report)
        _check_listings(report)
        _check_orders(report)
        _check_chain(report)
    # Recorded after the snapshot's read-only transaction has ended.
    if record:
        report.check_id = LedgerCheck.objects.create(
            ok=report.ok, summary=report.summary(), violations=report.violations[:1000]
        ).pk
    return report


# A published head someone kept -----------------------------------------------------

MAX_ANCHOR_CHARACTERS = 10_000
MAX_SEQUENCE = 10**15
LOWER_HEX_64 = re.compile(r"[0-9a-f]{64}")
# How long the public pages and API reuse one walk of the whole chain for the
# same journal head (a walk costs time in proportion to the journal). A
# re-hashed rewrite changes the head and shows at once; contents edited without
# re-hashing leave the head as it was and may take this long to show there.
CHAIN_VERDICT_SECONDS = 60


def _decoded(value, length: int) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        return None
    return raw if len(raw) == length else None


def parse_anchor(data) -> dict:
    """A published head (JSON text, bytes or an already decoded object) as
    checked values, or a ValidationError with a translated message per field."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                _("The head is not UTF-8 text."), code="invalid_anchor"
            ) from None
    if isinstance(data, str):
        if len(data) > MAX_ANCHOR_CHARACTERS:
            raise ValidationError(
                _("A published head is a short JSON object; this is too long."),
                code="invalid_anchor",
            )
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise ValidationError(
                _("The head is not valid JSON: paste it exactly as published."),
                code="invalid_anchor",
            ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            _(
                "A published head is a JSON object with sequence, entry_hash, "
                "published_at, public_key and signature."
            ),
            code="invalid_anchor",
        )
    if data.get("format") != chain.HEAD_FORMAT:
        raise field_error(
            "format",
            _(
                "This is not a journal head published by this registry (format "
                "%(format)s expected)."
            )
            % {"format": chain.HEAD_FORMAT},
            "invalid_anchor",
        )
    sequence = data.get("sequence")
    if (
        isinstance(sequence, bool)
        or not isinstance(sequence, int)
        or not 0 < sequence < MAX_SEQUENCE
    ):
        raise field_error(
            "sequence",
            _("The sequence must be a whole number of at least 1."),
            "invalid_anchor",
        )
    entry_hash = data.get("entry_hash")
    if not isinstance(entry_hash, str) or not LOWER_HEX_64.fullmatch(entry_hash):
        raise field_error(
            "entry_hash",
            _("The entry hash must be 64 lowercase hexadecimal digits."),
            "invalid_anchor",
        )
    published_at = data.get("published_at")
    try:
        chain.parse_head_time(published_at)
    except (TypeError, ValueError):
        raise field_error(
            "published_at",
            _("The publication time must look like 2026-07-01T00:00:00Z."),
            "invalid_anchor",
        ) from None
    public = _decoded(data.get("public_key"), 32)
    if public is None:
        raise field_error(
            "public_key",
            _("The public key must be 32 bytes in base64."),
            "invalid_anchor",
        )
    signature = _decoded(data.get("signature"), 64)
    if signature is None:
        raise field_error(
            "signature",
            _("The signature must be 64 bytes in base64."),
            "invalid_anchor",
        )
    key_id = data.get("key_id", chain.key_id(public))
    if key_id != chain.key_id(public):
        raise field_error(
            "key_id",
            _("The key fingerprint does not belong to the public key."),
            "invalid_anchor",
        )
    return {
        "sequence": sequence,
        "entry_hash": entry_hash,
        "published_at": published_at,
        "key_id": key_id,
        "public_key": public,
        "signature": signature,
    }


@dataclass
class AnchorCheck:
    """What checking a published head found; ``problems`` says why it fails,
    in the user's language."""

    sequence: int
    entry_hash: str
    published_at: str
    key_id: str
    signature_valid: bool = False
    key_trusted: bool = False
    contained: bool = False
    chain_intact: bool = False
    journal_sequence: int = 0
    problems: list = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _ChainVerdict:
    first_broken: int | None  # the first entry whose place in the chain fails
    cut_short: bool  # the head row remembers a later entry
    last_sequence: int


def _chain_verdict() -> _ChainVerdict:
    first_broken, last = None, (0, chain.GENESIS)
    for entry, problems in walk_chain():
        if problems and first_broken is None:
            first_broken = entry.sequence
        last = (entry.sequence, entry.entry_hash)
    return _ChainVerdict(first_broken, head_problem(*last) is not None, last[0])


def check_anchor(data, *, reuse_walk: bool = False) -> AnchorCheck:
    """Whether a head this registry published is validly signed by one of its
    keys and still contained in today's journal: the entry at its sequence
    has its hash, and the whole chain, from the first entry through that one
    to today's last, recomputes. A journal rewritten and re-hashed passes the
    chain but not the comparison; one rewritten without re-hashing fails the
    chain. Bad input raises ValidationError (``parse_anchor``).

    ``reuse_walk`` (public pages and API, where anyone may ask at any rate)
    reuses the chain's verdict for the same journal head for up to a minute,
    so a request costs one walk per minute at most; the command line always
    walks it afresh."""
    head = parse_anchor(data)
    check = AnchorCheck(
        sequence=head["sequence"],
        entry_hash=head["entry_hash"],
        published_at=head["published_at"],
        key_id=head["key_id"],
    )
    check.signature_valid = chain.head_signature_valid(
        head["public_key"],
        head["signature"],
        head["sequence"],
        head["entry_hash"],
        head["published_at"],
    )
    check.key_trusted = trusted_public_keys().get(head["key_id"]) == head["public_key"]
    with read_snapshot():
        stored = (
            LedgerEntry.objects.filter(sequence=head["sequence"])
            .values_list("entry_hash", flat=True)
            .first()
        )
        verdict = None
        if reuse_walk:
            now = (
                LedgerHead.objects.filter(pk=1)
                .values_list("last_sequence", "last_hash")
                .first()
            )
            cache_key = "ledger-chain-verdict:{}:{}".format(*(now or (0, "")))
            verdict = cache.get(cache_key)
        if verdict is None:
            verdict = _chain_verdict()
            if reuse_walk:
                cache.set(cache_key, verdict, CHAIN_VERDICT_SECONDS)
    check.journal_sequence = verdict.last_sequence
    check.contained = stored == head["entry_hash"]
    check.chain_intact = verdict.first_broken is None and not verdict.cut_short
    if not check.key_trusted:
        check.problems.append(
            _(
                "It was not signed with the registry's key (its key fingerprint is "
                "%(key)s)."
            )
            % {"key": head["key_id"]}
        )
    if not check.signature_valid:
        check.problems.append(
            _(
                "Its signature does not match it: the head was altered, or signed "
                "with another key."
            )
        )
    if stored is None:
        check.problems.append(
            _("Today's journal has no entry %(sequence)s: it ends at entry %(last)s.")
            % {"sequence": head["sequence"], "last": verdict.last_sequence}
        )
    elif not check.contained:
        check.problems.append(
            _(
                "Entry %(sequence)s of today's journal has another hash than the "
                "published one: the journal has been rewritten since."
            )
            % {"sequence": head["sequence"]}
        )
    if verdict.first_broken is not None:
        check.problems.append(
            _(
                "Today's journal does not verify from entry %(sequence)s on: its "
                "hashes do not recompute or link."
            )
            % {"sequence": verdict.first_broken}
        )
    if verdict.cut_short:
        check.problems.append(
            _(
                "Today's journal ends before the last entry the registry recorded: "
                "it has been cut short."
            )
        )
    return check
