"""Writes for the trading ledger: the only code that changes blocks, requests
and the journal. See trading/models.py for the invariants.

Locking, in one order so transactions never deadlock: the account credits leave
(reserve, release), or else the request under review (approval), then its
blocks, and the journal head last of all: every transaction appends to the
journal as its final statement, so the head is held only until the commit
(on PostgreSQL the insert trigger takes it). Approval needs no
account lock: the reserved blocks belong to the request alone, and receiving
credits cannot overdraw an account. On SQLite the IMMEDIATE transactions
serialize writers and ``select_for_update`` is a no-op; the invariants hold the
same way.

On PostgreSQL issuing a batch's blocks, a reservation, a settlement and a
release are one statement each, functions in ``trading/db_guards.py`` that take
the same steps as ``issue_batch``, ``_reserve``, ``_settle`` and ``_release``
here (see ``_trades_in_database``); the application's database role can change
blocks and the journal only through them.

Reservations never outlive their request: every step that touches an account
(a new request from it, a review of one of its requests) first releases that
account's requests past their expiry (``release_expired``), and the review
queue releases them all, so credits come back even when beat is down.

Refusals raise ``ValidationError`` (bad input, not enough credits),
``StateConflict`` (wrong state, or not again), ``NotPermitted`` or
``PermissionDenied`` (common/errors.py) with translated messages, and change
nothing.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from common import quantities
from common.errors import NotPermitted, StateConflict, checked, field_error
from registry.models import Account, Project, User
from registry.roles import Role
from registry.selectors import get_user_organization_ids, has_role
from trading import certificates, chain
from trading.models import (
    CreditBatch,
    CreditBlock,
    LedgerEntry,
    LedgerHead,
    Listing,
    SerialAllocator,
    TradeRequest,
)
from trading.selectors import find_issued_batch
from trading.serials import split


def whole_tonnes(value, *, field: str = "quantity") -> int:
    """A positive whole number of tonnes from user input, or a DomainError."""
    return checked(quantities.whole_tonnes, value, field=field)


# The journal ---------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    kind: str
    block: CreditBlock
    from_account_id: int | None
    to_account_id: int
    price_per_tonne: Decimal | None = None
    currency: str = ""
    listing_id: int | None = None


def _trades_in_database() -> bool:
    """PostgreSQL hashes the journal in a trigger and reserves and settles in
    one statement each (trading/db_guards.py); elsewhere (SQLite) this module's
    Python does the same steps. The whole test suite runs on both."""
    return connection.vendor == "postgresql"


def _call(function: str, *arguments):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {function}({', '.join(['%s'] * len(arguments))})",
            arguments,
        )
        return cursor.fetchone()


def _append(
    movements: list[Movement],
    *,
    actor: User | None,
    trade_request: TradeRequest | None = None,
    idempotency_key: str = "",
    now=None,
) -> list[LedgerEntry]:
    """Write one journal entry per movement, chained to the head, stamped
    ``now`` (the time of the step that made them, as PostgreSQL's functions
    stamp theirs). Callers append as the last step of their transaction, so
    the head stays locked only until the commit that follows."""
    now = now or timezone.now()
    entries = []
    for movement in movements:
        entry = LedgerEntry(
            kind=movement.kind,
            batch_id=movement.block.batch_id,
            first_serial=movement.block.first_serial,
            last_serial=movement.block.last_serial,
            quantity=movement.block.quantity,
            from_account_id=movement.from_account_id,
            to_account_id=movement.to_account_id,
            price_per_tonne=movement.price_per_tonne,
            currency=movement.currency,
            trade_request=trade_request,
            listing_id=movement.listing_id,
            actor=actor,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        entries.append(entry)
    if not _trades_in_database():
        _link(entries)  # PostgreSQL's insert trigger hashes and links them instead
    return LedgerEntry.objects.bulk_create(entries)


def _link(entries: list[LedgerEntry]) -> None:
    """Give entries their sequence and chain hashes from the head, in Python:
    for databases without the chaining trigger (SQLite, whose IMMEDIATE
    transactions already serialize writers)."""
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        head = LedgerHead(pk=1, last_sequence=0, last_hash=chain.GENESIS)
    for entry in entries:
        entry.content_hash = chain.content_hash(entry.payload())
        entry.sequence = head.last_sequence + 1
        entry.previous_hash = head.last_hash
        entry.entry_hash = chain.link_hash(
            entry.previous_hash, entry.sequence, entry.content_hash
        )
        head.last_sequence, head.last_hash = entry.sequence, entry.entry_hash
    head.save()


def _lock_accounts(*account_ids: int) -> dict[int, Account]:
    """Lock accounts in primary-key order (the one global order). FOR NO KEY
    UPDATE: the lock serializes spending, yet leaves the key-share locks that
    foreign keys to the account take (journal inserts) free to proceed."""
    ids = sorted(set(account_ids))
    return {
        account.pk: account
        for account in Account.objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
    }


def registry_account(kind: str) -> Account:
    account = Account.objects.filter(kind=kind).first()
    if account is None:
        raise ValidationError(
            _("The registry has no %(kind)s account yet.")
            % {"kind": Account.Kind(kind).label},
            code="no_registry_account",
        )
    return account


# Issuance ------------------------------------------------------------------------


def _refuse_issued_period(project: Project, start: date, end: date) -> None:
    """A monitoring period of a project is issued once: no double issuance."""
    issued = find_issued_batch(project=project, start=start, end=end)
    if issued is not None:
        raise StateConflict(
            _(
                "Credits were already issued for %(start)s – %(end)s of this "
                "project (batch %(batch)s); a monitoring period is issued once."
            )
            % {
                "start": issued.monitoring_start.isoformat(),
                "end": issued.monitoring_end.isoformat(),
                "batch": issued.serial_label,
            },
            code="period_issued",
            field="monitoring_start",
        )


@transaction.atomic
def issue_batch(
    *,
    actor: User,
    project: Project,
    vintage: int,
    monitoring_start: date,
    monitoring_end: date,
    quantity: int,
    buffer_quantity: int,
    holder_account: Account,
    source: str = "",
) -> CreditBatch:
    """Create a batch of ``quantity`` new serials, the holder's block and the
    buffer pool's block, and their journal entries: a constant number of rows
    whatever the quantity. Only registry admins issue."""
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can issue credits."))
    quantity = whole_tonnes(quantity)
    if isinstance(buffer_quantity, bool) or not isinstance(buffer_quantity, int):
        raise ValidationError(
            {"buffer_quantity": _("The buffer is a whole number of tonnes.")}
        )
    if not 0 <= buffer_quantity < quantity:
        raise ValidationError(
            {
                "buffer_quantity": _(
                    "The buffer must be at least 0 and less than the quantity issued."
                )
            }
        )
    if holder_account.kind != Account.Kind.HOLDING:
        raise ValidationError(
            {"holder_account": _("Credits are issued to a holding account.")}
        )
    buffer_account = (
        registry_account(Account.Kind.BUFFER_POOL) if buffer_quantity else None
    )
    allocator = SerialAllocator.objects.select_for_update().filter(pk=1).first()
    if allocator is None:
        SerialAllocator.objects.create(pk=1, next_serial=1)
        allocator = SerialAllocator.objects.select_for_update().get(pk=1)
    # Issuance is serialized by the allocator's lock, so this check cannot race;
    # on PostgreSQL an exclusion constraint stands behind it.
    _refuse_issued_period(project, monitoring_start, monitoring_end)
    first = allocator.next_serial
    last = first + quantity - 1
    batch = CreditBatch(
        project=project,
        vintage=vintage,
        monitoring_start=monitoring_start,
        monitoring_end=monitoring_end,
        quantity=quantity,
        buffer_quantity=buffer_quantity,
        first_serial=first,
        last_serial=last,
        source=source,
        issued_by=actor,
    )
    batch.full_clean()
    batch.save()
    allocator.next_serial = last + 1
    allocator.save(update_fields=["next_serial"])
    if _trades_in_database():
        # The application role cannot write blocks: the function does these steps.
        _call(
            "trading_issue_blocks",
            batch.pk,
            holder_account.pk,
            buffer_account.pk if buffer_account else None,
            actor.pk,
        )
        return batch

    held = quantity - buffer_quantity
    holder_block = CreditBlock.objects.create(
        batch=batch,
        account=holder_account,
        first_serial=first,
        last_serial=first + held - 1,
        quantity=held,
        state=CreditBlock.State.ACTIVE,
    )
    movements = [
        Movement(LedgerEntry.Kind.ISSUE, holder_block, None, holder_account.pk)
    ]
    if buffer_quantity:
        buffer_block = CreditBlock.objects.create(
            batch=batch,
            account=buffer_account,
            first_serial=first + held,
            last_serial=last,
            quantity=buffer_quantity,
            state=CreditBlock.State.ACTIVE,
        )
        movements.append(
            Movement(LedgerEntry.Kind.BUFFER, buffer_block, None, buffer_account.pk)
        )
    _append(movements, actor=actor)
    return batch


# Requests --------------------------------------------------------------------------


def _request_hash(body: dict) -> str:
    canonical = json.dumps(
        body, default=str, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_idempotency_key(value: str) -> str:
    key = (value or "").strip()
    if not key or len(key) > 100:
        raise ValidationError(
            _("Every request needs an idempotency key of 1 to 100 characters."),
            code="idempotency_key",
        )
    return key


def idempotency_conflict() -> StateConflict:
    return StateConflict(
        _(
            "This idempotency key was already used for a different request; "
            "use a new key for a new request."
        ),
        code="idempotency_conflict",
    )


def _existing_for_key(actor: User, key: str, body_hash: str) -> TradeRequest | None:
    existing = TradeRequest.objects.filter(initiator=actor, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.request_hash != body_hash:
        raise idempotency_conflict()
    return existing


def _check_may_spend(actor: User, account: Account) -> None:
    may_trade = has_role(actor, Role.BUREAU_STAFF) or has_role(actor, Role.BUYER)
    if not (
        may_trade and account.organization_id in get_user_organization_ids(user=actor)
    ):
        raise PermissionDenied(
            _("You can only move credits out of your own organization's accounts.")
        )
    if account.kind != Account.Kind.HOLDING:
        raise ValidationError(
            _("Credits can only leave a holding account."), code="account_kind"
        )


def _not_enough(request: TradeRequest, available: int) -> ValidationError:
    return field_error(
        "quantity",
        _(
            "Only %(available)s t are available (not reserved) in account "
            "%(account)s for this request; %(wanted)s t were asked for."
        )
        % {
            "available": f"{available:,}",
            "account": request.from_account.number,
            "wanted": f"{request.quantity:,}",
        },
        "insufficient_credits",
    )


def _reserve(request: TradeRequest, actor: User) -> None:
    """Reserve ``request.quantity`` active serials of its account, oldest batch
    first, splitting the last block; refuse if there are not enough."""
    if _trades_in_database():
        (available,) = _call("trading_reserve", request.pk, actor.pk)
        if available < request.quantity:
            raise _not_enough(request, available)
        return
    _lock_accounts(request.from_account_id)
    # of=self: the ordering joins the batch, whose row must not be locked too
    # (the journal's foreign-key checks share-lock it while holding the head).
    blocks = CreditBlock.objects.select_for_update(of=("self",), no_key=True).filter(
        account=request.from_account, state=CreditBlock.State.ACTIVE
    )
    if request.batch_id:
        blocks = blocks.filter(batch_id=request.batch_id)
    if request.vintage:
        blocks = blocks.filter(batch__vintage=request.vintage)
    blocks = list(blocks.order_by("batch__issued_at", "batch_id", "first_serial"))
    available = sum(block.quantity for block in blocks)
    if available < request.quantity:
        raise _not_enough(request, available)
    # One time for the whole step, as PostgreSQL's now() is: every block
    # touched and every entry written carry it (the blocks' updated_at too).
    now = timezone.now()
    remaining = request.quantity
    movements = []
    for block in blocks:
        if remaining == 0:
            break
        if block.quantity > remaining:
            (_first, last), (rest_first, rest_last) = split(
                block.first_serial, block.last_serial, remaining
            )
            block.last_serial, block.quantity = last, remaining
            block.state, block.trade_request = CreditBlock.State.RESERVED, request
            CreditBlock.objects.filter(pk=block.pk).update(
                last_serial=last,
                quantity=remaining,
                state=block.state,
                trade_request=request,
                updated_at=now,
            )
            CreditBlock.objects.create(
                batch_id=block.batch_id,
                account_id=block.account_id,
                first_serial=rest_first,
                last_serial=rest_last,
                quantity=rest_last - rest_first + 1,
                state=CreditBlock.State.ACTIVE,
            )
        else:
            block.state, block.trade_request = CreditBlock.State.RESERVED, request
            CreditBlock.objects.filter(pk=block.pk).update(
                state=block.state, trade_request=request, updated_at=now
            )
        remaining -= block.quantity
        movements.append(
            Movement(
                LedgerEntry.Kind.RESERVE,
                block,
                request.from_account_id,
                request.from_account_id,
            )
        )
    _append(
        movements,
        actor=actor,
        trade_request=request,
        idempotency_key=request.idempotency_key,
        now=now,
    )


def _create_request(*, actor: User, idempotency_key: str, **fields) -> TradeRequest:
    key = checked_idempotency_key(idempotency_key)
    body = {
        name: (value.pk if hasattr(value, "pk") else value)
        for name, value in sorted(fields.items())
    }
    body_hash = _request_hash(body)
    request = TradeRequest(
        initiator=actor,
        idempotency_key=key,
        request_hash=body_hash,
        expires_at=timezone.now() + timedelta(hours=settings.TRADE_REQUEST_TTL_HOURS),
        **fields,
    )
    # Field values are checked here; the check constraints and the key's
    # uniqueness are left to the database (re-checking them costs a round trip
    # each): a key seen before, even from a racing twin, meets its unique index
    # at the insert, before anything is reserved, and the earlier request is
    # returned (or refused if its body differs).
    request.full_clean(
        exclude=["idempotency_key", "from_account", "to_account", "batch", "initiator"],
        validate_constraints=False,
    )
    release_expired(account_id=request.from_account_id)
    try:
        with transaction.atomic():
            request.save()
            _reserve(request, actor)
    except IntegrityError:
        existing = _existing_for_key(actor, key, body_hash)
        if existing is None:
            raise
        return existing
    return request


def _holding(account: Account) -> None:
    if account.kind != Account.Kind.HOLDING:
        raise field_error(
            "to_account",
            _("Credits can only be transferred to a holding account."),
            "account_kind",
        )


def request_transfer(
    *,
    actor: User,
    from_account: Account,
    to_account: Account,
    quantity,
    price_per_tonne,
    idempotency_key: str,
    batch: CreditBatch | None = None,
    vintage: int | None = None,
    note: str = "",
) -> TradeRequest:
    """Reserve credits for a transfer to another holder, pending review."""
    _check_may_spend(actor, from_account)
    _holding(to_account)
    if to_account.pk == from_account.pk:
        raise field_error(
            "to_account", _("Choose another account to transfer to."), "same_account"
        )
    price = checked(
        quantities.parse_price, price_per_tonne, field="price_per_tonne", currency="CNY"
    )
    return _create_request(
        actor=actor,
        idempotency_key=idempotency_key,
        kind=TradeRequest.Kind.TRANSFER,
        from_account=from_account,
        to_account=to_account,
        quantity=whole_tonnes(quantity),
        price_per_tonne=price,
        currency="CNY",
        batch=batch,
        vintage=vintage,
        note=note.strip(),
    )


def request_retirement(
    *,
    actor: User,
    from_account: Account,
    quantity,
    beneficiary: str,
    purpose: str,
    reporting_year: int,
    idempotency_key: str,
    beneficiary_public: bool = True,
    note: str = "",
    batch: CreditBatch | None = None,
    vintage: int | None = None,
) -> TradeRequest:
    """Reserve credits to retire them on behalf of a beneficiary, pending review."""
    _check_may_spend(actor, from_account)
    if not beneficiary.strip():
        raise ValidationError({"beneficiary": _("Name the beneficiary.")})
    if purpose not in TradeRequest.Purpose.values:
        raise ValidationError({"purpose": _("Choose a purpose from the list.")})
    return _create_request(
        actor=actor,
        idempotency_key=idempotency_key,
        kind=TradeRequest.Kind.RETIREMENT,
        from_account=from_account,
        to_account=registry_account(Account.Kind.RETIREMENT),
        quantity=whole_tonnes(quantity),
        beneficiary=beneficiary.strip(),
        beneficiary_public=beneficiary_public,
        purpose=purpose,
        reporting_year=reporting_year,
        note=note.strip(),
        batch=batch,
        vintage=vintage,
    )


# Retired and cancelled credits are final (ledger invariant 4): only live
# holdings and the buffer pool can be cancelled.
CANCELLABLE_ACCOUNT_KINDS = (Account.Kind.HOLDING, Account.Kind.BUFFER_POOL)


def request_cancellation(
    *,
    actor: User,
    from_account: Account,
    quantity,
    note: str,
    idempotency_key: str,
    batch: CreditBatch | None = None,
    vintage: int | None = None,
) -> TradeRequest:
    """A registry admin's request to cancel credits (e.g. a reversal); another
    admin reviews it."""
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can cancel credits."))
    if not note.strip():
        raise ValidationError({"note": _("Give the reason for the cancellation.")})
    if from_account.kind not in CANCELLABLE_ACCOUNT_KINDS:
        raise field_error(
            "from_account",
            _(
                "Credits can only be cancelled from a holding account or the "
                "buffer pool."
            ),
            "account_kind",
        )
    return _create_request(
        actor=actor,
        idempotency_key=idempotency_key,
        kind=TradeRequest.Kind.CANCELLATION,
        from_account=from_account,
        to_account=registry_account(Account.Kind.CANCELLATION),
        quantity=whole_tonnes(quantity),
        note=note.strip(),
        batch=batch,
        vintage=vintage,
    )


# Review ----------------------------------------------------------------------------


def _not_pending(request: TradeRequest) -> StateConflict:
    return StateConflict(
        _("This request is already %(status)s; it cannot be reviewed again.")
        % {"status": request.get_status_display().lower()},
        code="not_pending",
    )


def _awaiting_payment() -> StateConflict:
    return StateConflict(
        _(
            "This order is still waiting for its seller to confirm the "
            "payment; it can be reviewed once they have."
        ),
        code="awaiting_payment",
    )


def _locked_pending(request: TradeRequest) -> TradeRequest:
    request = TradeRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
    if request.status == TradeRequest.Status.AWAITING_PAYMENT:
        raise _awaiting_payment()
    if request.status != TradeRequest.Status.PENDING:
        raise _not_pending(request)
    return request


def _check_reviewer(actor: User, request: TradeRequest) -> None:
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can review requests."))
    if actor.pk == request.initiator_id:
        raise NotPermitted(
            _("You made this request, so another registry admin must review it."),
            code="own_request",
        )
    order = getattr(request, "order", None)
    if order is not None and actor.pk == order.payment_confirmed_by_id:
        raise NotPermitted(
            _(
                "You confirmed this order's payment, so another registry admin "
                "must review it."
            ),
            code="own_payment_confirmation",
        )


def approve_request(*, actor: User, request: TradeRequest) -> TradeRequest:
    """Settle a pending request: its reserved blocks move to the buyer (transfer),
    or become retired or cancelled. Settles at most once; a request past its
    expiry is refused (and released first, with its account's other expired
    requests).

    Only the request row is locked, by the one statement that moves it from
    pending to settled (so two reviewers cannot both win): its reserved blocks
    belong to it alone, and receiving credits cannot overdraw an account, so no
    account lock is needed."""
    _check_reviewer(actor, request)
    release_expired(account_id=request.from_account_id)
    return _approve(actor, request)


@transaction.atomic
def _approve(actor: User, request: TradeRequest) -> TradeRequest:
    order = getattr(request, "order", None)
    retirement = None
    if order is not None and order.retire_on_delivery:
        # Made here, in the settling transaction, so it is never pending on
        # its own: the settlement delivers the serials and retires them.
        retirement = _delivery_retirement(order, request)
    if _trades_in_database():
        settled, status, reviewed_at = _call("trading_settle", request.pk, actor.pk)
    else:
        settled, status, reviewed_at = _settle(request, actor, onward=retirement)
    # OVERDUE: it expired after the release above, which the next step on its
    # account (or the expiry task) will release.
    if status in (OVERDUE, TradeRequest.Status.EXPIRED):
        raise StateConflict(
            _(
                "This request expired before it was approved, so it cannot be "
                "settled; its credits go back to the account they came from."
            ),
            code="expired",
        )
    if status == TradeRequest.Status.AWAITING_PAYMENT:
        raise _awaiting_payment()
    if not settled:
        raise _not_pending(TradeRequest(pk=request.pk, status=status))
    request.status = TradeRequest.Status.SETTLED
    request.reviewed_by, request.reviewed_at = actor, reviewed_at
    if request.kind == TradeRequest.Kind.RETIREMENT:
        certificates.issue_certificate(request=request)
    if retirement is not None:
        retirement.status = TradeRequest.Status.SETTLED
        retirement.reviewed_by, retirement.reviewed_at = actor, reviewed_at
        certificates.issue_certificate(request=retirement)
    return request


def _delivery_retirement(order, request: TradeRequest) -> TradeRequest:
    """The retirement of an order retired on delivery: from the buyer's
    account, in the buyer's name, for the order's beneficiary; the order's
    settlement reserves the delivered serials for it and settles it."""
    retirement = TradeRequest.objects.create(
        kind=TradeRequest.Kind.RETIREMENT,
        from_account_id=request.to_account_id,
        to_account=registry_account(Account.Kind.RETIREMENT),
        quantity=request.quantity,
        batch_id=request.batch_id,
        beneficiary=order.beneficiary,
        beneficiary_public=order.beneficiary_public,
        purpose=order.purpose,
        reporting_year=order.reporting_year,
        note=_("Retired on delivery of order %(order)s.") % {"order": order.number},
        initiator_id=request.initiator_id,
        idempotency_key=f"order-{order.pk}-retirement",
        request_hash=request.request_hash,
        expires_at=timezone.now() + timedelta(hours=settings.TRADE_REQUEST_TTL_HOURS),
    )
    type(order).objects.filter(pk=order.pk).update(retirement_request=retirement)
    order.retirement_request = retirement
    return retirement


# What settling a pending request past its expiry returns (it stays pending
# until ``release_expired`` releases it).
OVERDUE = "overdue"

SETTLEMENT = {
    TradeRequest.Kind.TRANSFER: (LedgerEntry.Kind.TRANSFER, CreditBlock.State.ACTIVE),
    TradeRequest.Kind.RETIREMENT: (LedgerEntry.Kind.RETIRE, CreditBlock.State.RETIRED),
    TradeRequest.Kind.CANCELLATION: (
        LedgerEntry.Kind.CANCEL,
        CreditBlock.State.CANCELLED,
    ),
}


def _settle(
    request: TradeRequest, actor: User, onward: TradeRequest | None = None
) -> tuple[bool, str, object]:
    """``trading_settle`` in Python (SQLite): whether this call settled the
    request, its status (or OVERDUE) and the review time. A request's parties,
    kind and price never change after it is made, so they are read from the
    object passed in. ``onward``: the retirement of an order retired on
    delivery, which receives the serials and is settled right after."""
    now = timezone.now()
    settled = TradeRequest.objects.filter(
        pk=request.pk, status=TradeRequest.Status.PENDING, expires_at__gt=now
    ).update(status=TradeRequest.Status.SETTLED, reviewed_by=actor, reviewed_at=now)
    if not settled:
        status = TradeRequest.objects.values_list("status", flat=True).get(
            pk=request.pk
        )
        return (
            False,
            (OVERDUE if status == TradeRequest.Status.PENDING else status),
            None,
        )
    kind, state = SETTLEMENT[request.kind]
    if onward is not None:
        state = CreditBlock.State.RESERVED
    blocks = list(
        CreditBlock.objects.select_for_update()
        .filter(trade_request=request, state=CreditBlock.State.RESERVED)
        .order_by("batch_id", "first_serial")
    )
    # One statement moves them all; the rows read above feed the journal.
    CreditBlock.objects.filter(pk__in=[block.pk for block in blocks]).update(
        account_id=request.to_account_id,
        state=state,
        trade_request=onward,
        updated_at=now,
    )
    currency = request.currency if request.price_per_tonne is not None else ""
    movements = [
        Movement(
            kind,
            block,
            request.from_account_id,
            request.to_account_id,
            price_per_tonne=request.price_per_tonne,
            currency=currency,
        )
        for block in blocks
    ]
    _append(movements, actor=actor, trade_request=request, now=now)
    if onward is not None:
        # In the journal too: delivered, reserved for the retirement, retired.
        _append(
            [
                Movement(
                    LedgerEntry.Kind.RESERVE,
                    block,
                    request.to_account_id,
                    request.to_account_id,
                )
                for block in blocks
            ],
            actor=actor,
            trade_request=onward,
            now=now,
        )
        onward_settled, _status, _time = _settle(onward, actor)
        if not onward_settled:
            raise StateConflict(
                _("The retirement on delivery could not be settled."),
                code="retirement_not_settled",
            )
    return True, TradeRequest.Status.SETTLED, now


def _release(request: TradeRequest, actor: User | None) -> None:
    """Give a rejected, declined or expired request's reserved serials back:
    an order's to its listing while that is open (``return``), else as
    active credits of its account (``release``; ``trading_release`` on
    PostgreSQL)."""
    if _trades_in_database():
        _call("trading_release", request.pk, actor.pk if actor else None)
        return
    now = timezone.now()
    listing = (
        Listing.objects.select_for_update(no_key=True)
        .filter(orders__trade_request=request, status=Listing.Status.OPEN)
        .first()
    )
    blocks = list(
        CreditBlock.objects.select_for_update()
        .filter(trade_request=request, state=CreditBlock.State.RESERVED)
        .order_by("batch_id", "first_serial")
    )
    if listing is None:
        kind, state, listing_id = (
            LedgerEntry.Kind.RELEASE,
            CreditBlock.State.ACTIVE,
            None,
        )
    else:
        kind, state, listing_id = (
            LedgerEntry.Kind.RETURN,
            CreditBlock.State.LISTED,
            listing.pk,
        )
    CreditBlock.objects.filter(pk__in=[block.pk for block in blocks]).update(
        state=state, trade_request=None, listing_id=listing_id, updated_at=now
    )
    if listing is not None:
        Listing.objects.filter(pk=listing.pk).update(
            quantity_left=F("quantity_left") + sum(block.quantity for block in blocks)
        )
    _append(
        [
            Movement(
                kind,
                block,
                request.from_account_id,
                request.from_account_id,
                listing_id=listing_id,
            )
            for block in blocks
        ],
        actor=actor,
        trade_request=request,
        now=now,
    )


def reject_request(*, actor: User, request: TradeRequest, reason: str) -> TradeRequest:
    """Refuse a pending request with a reason; its serials are released. Its
    account's requests past their expiry are released first (this one too,
    which is then refused as no longer pending)."""
    _check_reviewer(actor, request)
    if not reason.strip():
        raise ValidationError(
            {"reason": _("Give a reason: the requester will see it.")}
        )
    release_expired(account_id=request.from_account_id)
    return _reject(actor, request, reason)


@transaction.atomic
def _reject(actor: User, request: TradeRequest, reason: str) -> TradeRequest:
    _lock_accounts(request.from_account_id)
    request = _locked_pending(request)
    request.status = TradeRequest.Status.REJECTED
    request.reviewed_by, request.reviewed_at = actor, timezone.now()
    request.review_reason = reason.strip()
    request.save(
        update_fields=["status", "reviewed_by", "reviewed_at", "review_reason"]
    )
    _release(request, actor)
    return request


# Expiry ----------------------------------------------------------------------------


def release_expired(*, account_id: int | None = None, now=None) -> list[TradeRequest]:
    """Expire the pending requests past their expiry, of one account (or of all
    without ``account_id``), and give their reserved serials back; returns them.

    Each request is its own transaction in the ledger's lock order (its account,
    then the request, its blocks, the journal), committed before the caller's
    step begins (unless the caller is itself inside a transaction), so a
    refusal of that step does not undo the release. Finding none costs one
    indexed read and takes no lock."""
    now = now or timezone.now()
    overdue = TradeRequest.objects.filter(
        status__in=TradeRequest.OPEN_STATUSES, expires_at__lte=now
    )
    if account_id is not None:
        overdue = overdue.filter(from_account_id=account_id)
    released = []
    for request in overdue.order_by("pk"):
        with transaction.atomic():
            accounts = _lock_accounts(request.from_account_id)
            # Re-checked under the lock: a reviewer or another release may
            # have got there first.
            expired = TradeRequest.objects.filter(
                pk=request.pk, status__in=TradeRequest.OPEN_STATUSES
            ).update(status=TradeRequest.Status.EXPIRED)
            if not expired:
                continue
            request.status = TradeRequest.Status.EXPIRED
            _release(request, None)
        request.from_account = accounts[request.from_account_id]
        released.append(request)
    return released


def expire_stale_requests(*, now=None) -> int:
    """Release every pending request past its expiry (the beat task); returns
    how many."""
    return len(release_expired(now=now))
