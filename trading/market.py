"""Writes for the market: listings, orders, and the seller's payment record.
The only code that changes ``Listing`` and ``Order`` (and, through the
ledger's steps, the blocks they hold). See trading/models.py for both.

A listing moves serials from the seller's active credits to ``listed``; an
order moves them on to ``reserved`` for its trade request (a transfer from
seller to buyer, awaiting payment); the seller confirms the payment (the
request enters the review queue, ``trading.services.approve_request`` settles
it) or declines; a declined, rejected or expired order returns its serials to
the listing while it is open. Each step is one journal entry per block moved
(``list``, ``delist``, ``order``, ``return``), written in one statement by
the functions in trading/db_guards.py on PostgreSQL and by this module's
Python elsewhere (SQLite), in the ledger's lock order: the seller's account,
the listing, the request, its blocks, the journal head.

Refusals are typed (common/errors.py), translated, and change nothing.
"""

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from common import quantities
from common.errors import NotPermitted, StateConflict, checked, field_error
from registry.models import Account, User
from registry.roles import Role
from registry.selectors import get_user_organization_ids, has_role
from trading.models import (
    CreditBatch,
    CreditBlock,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)
from trading.serials import split
from trading.services import (
    Movement,
    _append,
    _call,
    _existing_for_key,
    _lock_accounts,
    _release,
    _request_hash,
    _trades_in_database,
    checked_idempotency_key,
    idempotency_conflict,
    release_expired,
    whole_tonnes,
)

MAX_NOTE_LENGTH = 2000


def _acts_for(actor: User, account: Account) -> bool:
    """Whether ``actor`` trades for the organization holding ``account``."""
    may_trade = has_role(actor, Role.BUREAU_STAFF) or has_role(actor, Role.BUYER)
    return may_trade and account.organization_id in get_user_organization_ids(
        user=actor
    )


def _check_seller(actor: User, listing: Listing, message: str) -> None:
    if not _acts_for(actor, listing.account):
        raise PermissionDenied(message)


def _today() -> date:
    return timezone.localdate()


# Listings ------------------------------------------------------------------------


def create_listing(
    *,
    actor: User,
    account: Account,
    batch: CreditBatch,
    quantity,
    price_per_tonne,
    minimum_lot,
    idempotency_key: str,
    ends_on: date | None = None,
    note: str = "",
) -> Listing:
    """Offer ``quantity`` tonnes of ``batch`` from the actor's holding account
    at a price per tonne: the serials are listed at once (they cannot be sold
    twice or moved elsewhere). The same key with the same offer returns the
    listing made the first time."""
    if not _acts_for(actor, account):
        raise PermissionDenied(
            _("You can only list credits from your own organization's accounts.")
        )
    if account.kind != Account.Kind.HOLDING:
        raise field_error(
            "account", _("Credits are listed from a holding account."), "account_kind"
        )
    key = checked_idempotency_key(idempotency_key)
    quantity = whole_tonnes(quantity)
    price = checked(
        quantities.parse_price, price_per_tonne, field="price_per_tonne", currency="CNY"
    )
    if price <= 0:
        raise field_error(
            "price_per_tonne", _("The price must be more than 0."), "not_positive"
        )
    minimum_lot = whole_tonnes(minimum_lot, field="minimum_lot")
    if minimum_lot > quantity:
        raise field_error(
            "minimum_lot",
            _("The minimum lot cannot be more than the quantity listed."),
            "lot_above_quantity",
        )
    if ends_on is not None and ends_on < _today():
        raise field_error(
            "ends_on", _("The end date cannot be in the past."), "ends_in_past"
        )
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise field_error(
            "note",
            _("Keep the note under %(limit)s characters.") % {"limit": MAX_NOTE_LENGTH},
            "too_long",
        )
    body_hash = _request_hash(
        {
            "account": account.pk,
            "batch": batch.pk,
            "quantity": quantity,
            "price_per_tonne": price,
            "minimum_lot": minimum_lot,
            "ends_on": ends_on,
            "note": note,
        }
    )
    listing = Listing(
        account=account,
        batch=batch,
        quantity_listed=quantity,
        quantity_left=quantity,
        price_per_tonne=price,
        minimum_lot=minimum_lot,
        ends_on=ends_on,
        note=note,
        created_by=actor,
        idempotency_key=key,
        request_hash=body_hash,
    )
    release_expired(account_id=account.pk)
    try:
        with transaction.atomic():
            listing.save()
            available = _list(listing, actor)
            if available < quantity:
                raise field_error(
                    "quantity",
                    _(
                        "Only %(available)s t of this batch are available (not "
                        "listed or reserved) in account %(account)s; %(wanted)s t "
                        "were to be listed."
                    )
                    % {
                        "available": f"{available:,}",
                        "account": account.number,
                        "wanted": f"{quantity:,}",
                    },
                    "insufficient_credits",
                )
    except IntegrityError:
        existing = Listing.objects.filter(created_by=actor, idempotency_key=key).first()
        if existing is None:
            raise
        if existing.request_hash != body_hash:
            raise idempotency_conflict() from None
        return existing
    return listing


def _list(listing: Listing, actor: User) -> int:
    """List the listing's quantity from its account's active serials of its
    batch, lowest first; returns what was available (fewer: nothing moved)."""
    if _trades_in_database():
        (available,) = _call("trading_list", listing.pk, actor.pk)
        return available
    _lock_accounts(listing.account_id)
    blocks = list(
        CreditBlock.objects.select_for_update()
        .filter(
            account_id=listing.account_id,
            batch_id=listing.batch_id,
            state=CreditBlock.State.ACTIVE,
        )
        .order_by("first_serial")
    )
    available = sum(block.quantity for block in blocks)
    if available < listing.quantity_left:
        return available
    now = timezone.now()
    movements = _take_front(
        blocks,
        listing.quantity_left,
        now=now,
        taken={"state": CreditBlock.State.LISTED, "listing_id": listing.pk},
        rest={"state": CreditBlock.State.ACTIVE, "listing_id": None},
    )
    _append(
        [
            Movement(
                LedgerEntry.Kind.LIST,
                block,
                listing.account_id,
                listing.account_id,
                listing_id=listing.pk,
            )
            for block in movements
        ],
        actor=actor,
        idempotency_key=listing.idempotency_key,
        now=now,
    )
    return available


def _take_front(
    blocks: list[CreditBlock], quantity: int, *, now, taken: dict, rest: dict
) -> list[CreditBlock]:
    """Give the first ``quantity`` serials of ``blocks`` (in serial order) the
    fields ``taken``, splitting the last block used, whose remainder keeps
    ``rest``; returns the blocks taken, as they now are."""
    remaining = quantity
    moved = []
    for block in blocks:
        if remaining == 0:
            break
        remainder = None
        if block.quantity > remaining:
            (_first, last), remainder = split(
                block.first_serial, block.last_serial, remaining
            )
            block.last_serial, block.quantity = last, remaining
        for name, value in taken.items():
            setattr(block, name, value)
        # The block shrinks before its remainder is written, as in the
        # PostgreSQL functions: blocks never overlap, not even within a
        # transaction (PostgreSQL's exclusion constraint checks each row).
        CreditBlock.objects.filter(pk=block.pk).update(
            last_serial=block.last_serial,
            quantity=block.quantity,
            updated_at=now,
            **taken,
        )
        if remainder is not None:
            rest_first, rest_last = remainder
            CreditBlock.objects.create(
                batch_id=block.batch_id,
                account_id=block.account_id,
                first_serial=rest_first,
                last_serial=rest_last,
                quantity=rest_last - rest_first + 1,
                **rest,
            )
        remaining -= block.quantity
        moved.append(block)
    return moved


def _locked_open_listing(listing: Listing) -> Listing:
    """The listing, locked after its account (the ledger's order); refused
    unless it is open."""
    _lock_accounts(listing.account_id)
    listing = Listing.objects.select_for_update(no_key=True).get(pk=listing.pk)
    if listing.status != Listing.Status.OPEN:
        raise StateConflict(
            _("This listing is %(status)s; it can no longer be changed.")
            % {"status": listing.get_status_display().lower()},
            code="listing_closed",
        )
    return listing


def _delist(listing: Listing, keep: int, actor: User | None) -> None:
    """Keep ``keep`` tonnes of an open listing on the market; the rest, highest
    serials first, go back to the seller's active credits."""
    if _trades_in_database():
        _call("trading_delist", listing.pk, keep, actor.pk if actor else None)
        listing.quantity_left = keep
        return
    blocks = list(
        CreditBlock.objects.select_for_update()
        .filter(listing=listing, state=CreditBlock.State.LISTED)
        .order_by("-first_serial")
    )
    now = timezone.now()
    remaining = listing.quantity_left - keep
    delisted = []
    for block in blocks:
        if remaining == 0:
            break
        taken = min(block.quantity, remaining)
        if taken == block.quantity:
            CreditBlock.objects.filter(pk=block.pk).update(
                state=CreditBlock.State.ACTIVE, listing=None, updated_at=now
            )
            moved = block
        else:
            CreditBlock.objects.filter(pk=block.pk).update(
                last_serial=block.last_serial - taken,
                quantity=block.quantity - taken,
                updated_at=now,
            )
            moved = CreditBlock.objects.create(
                batch_id=block.batch_id,
                account_id=block.account_id,
                first_serial=block.last_serial - taken + 1,
                last_serial=block.last_serial,
                quantity=taken,
                state=CreditBlock.State.ACTIVE,
            )
        delisted.append(moved)
        remaining -= taken
    Listing.objects.filter(pk=listing.pk).update(quantity_left=keep)
    listing.quantity_left = keep
    _append(
        [
            Movement(
                LedgerEntry.Kind.DELIST,
                block,
                listing.account_id,
                listing.account_id,
                listing_id=listing.pk,
            )
            for block in sorted(delisted, key=lambda block: block.first_serial)
        ],
        actor=actor,
        now=now,
    )


def lower_listing(*, actor: User, listing: Listing, quantity_left) -> Listing:
    """Offer less: keep ``quantity_left`` tonnes on the market (fewer than are
    left now) and give the rest back to the seller. 0 withdraws the listing."""
    _check_seller(
        actor, listing, _("Only the seller's organization can change this listing.")
    )
    if str(quantity_left).strip() in ("0", "0.0"):
        return withdraw_listing(actor=actor, listing=listing)
    keep = whole_tonnes(quantity_left, field="quantity_left")
    with transaction.atomic():
        listing = _locked_open_listing(listing)
        if keep >= listing.quantity_left:
            raise field_error(
                "quantity_left",
                _(
                    "Enter fewer tonnes than are left now (%(left)s t); to offer "
                    "more, make a new listing."
                )
                % {"left": f"{listing.quantity_left:,}"},
                "not_lower",
            )
        _delist(listing, keep, actor)
    return listing


def withdraw_listing(*, actor: User, listing: Listing) -> Listing:
    """Take the listing off the market: what is unsold goes back to the seller.
    Orders already made go on (their credits are theirs until they settle or
    return, and then they return to the seller's active credits)."""
    _check_seller(
        actor, listing, _("Only the seller's organization can withdraw this listing.")
    )
    with transaction.atomic():
        listing = _locked_open_listing(listing)
        _close(listing, Listing.Status.WITHDRAWN, actor)
    return listing


def _close(listing: Listing, status: str, actor: User | None) -> None:
    if listing.quantity_left:
        _delist(listing, 0, actor)
    listing.status = status
    listing.closed_by, listing.closed_at = actor, timezone.now()
    listing.save(update_fields=["status", "closed_by", "closed_at"])


def expire_listings(*, today: date | None = None) -> int:
    """Close the open listings past their end date, giving back what is
    unsold (the beat task; the market never shows them). Each in its own
    transaction; returns how many."""
    today = today or _today()
    closed = 0
    for listing in Listing.objects.filter(
        status=Listing.Status.OPEN, ends_on__lt=today
    ).order_by("pk"):
        with transaction.atomic():
            try:
                listing = _locked_open_listing(listing)
            except StateConflict:
                continue  # withdrawn meanwhile
            _close(listing, Listing.Status.EXPIRED, None)
            closed += 1
    return closed


# Orders --------------------------------------------------------------------------


def place_order(
    *,
    actor: User,
    listing: Listing,
    buyer_account: Account,
    quantity,
    idempotency_key: str,
    retire_on_delivery: bool = False,
    beneficiary: str = "",
    beneficiary_public: bool = True,
    purpose: str = "",
    reporting_year: int | None = None,
) -> Order:
    """Order ``quantity`` tonnes from an open listing (at least its minimum
    lot, or all that is left; at most what is left) into the buyer's holding
    account: the serials move from the listing to the order, which waits for
    the seller to confirm the payment. With ``retire_on_delivery`` the
    credits are retired for ``beneficiary`` when the order settles. The same
    key with the same order returns the order made the first time; of buyers
    racing for the last lot, the listing's lock lets exactly one win."""
    if not _acts_for(actor, buyer_account):
        raise PermissionDenied(
            _("You can only buy into your own organization's account.")
        )
    if buyer_account.kind != Account.Kind.HOLDING:
        raise field_error(
            "buyer_account",
            _("Credits are bought into a holding account."),
            "account_kind",
        )
    if buyer_account.organization_id == listing.account.organization_id:
        raise NotPermitted(
            _("This listing is your own organization's; you cannot buy from it."),
            code="own_listing",
        )
    key = checked_idempotency_key(idempotency_key)
    quantity = whole_tonnes(quantity)
    beneficiary = (beneficiary or "").strip()
    if retire_on_delivery:
        if not beneficiary:
            raise field_error(
                "beneficiary",
                _("Name the beneficiary the credits are retired for."),
                "required",
            )
        if len(beneficiary) > 200:
            raise field_error(
                "beneficiary",
                _("Keep the beneficiary's name under 200 characters."),
                "too_long",
            )
        if purpose not in TradeRequest.Purpose.values:
            raise field_error(
                "purpose", _("Choose a purpose from the list."), "invalid_choice"
            )
        if reporting_year is not None and (
            isinstance(reporting_year, bool)
            or not isinstance(reporting_year, int)
            or not 2000 <= reporting_year <= 2100
        ):
            raise field_error(
                "reporting_year",
                _("Enter the reporting year as four digits, e.g. 2026."),
                "invalid",
            )
    else:
        beneficiary, purpose, reporting_year, beneficiary_public = "", "", None, True
    release_expired(account_id=listing.account_id)
    # As it stands now (the caller's copy may be stale); the lock decides.
    listing = Listing.objects.get(pk=listing.pk)
    _check_orderable(listing, quantity)
    body = {
        "listing": listing.pk,
        "buyer_account": buyer_account.pk,
        "quantity": quantity,
        "retire_on_delivery": bool(retire_on_delivery),
        "beneficiary": beneficiary,
        "beneficiary_public": bool(beneficiary_public),
        "purpose": purpose,
        "reporting_year": reporting_year,
    }
    body_hash = _request_hash(body)
    now = timezone.now()
    request = TradeRequest(
        kind=TradeRequest.Kind.TRANSFER,
        status=TradeRequest.Status.AWAITING_PAYMENT,
        from_account_id=listing.account_id,
        to_account=buyer_account,
        quantity=quantity,
        batch_id=listing.batch_id,
        price_per_tonne=listing.price_per_tonne,
        currency=listing.currency,
        note=_("Order from listing %(listing)s.") % {"listing": listing.number},
        initiator=actor,
        idempotency_key=key,
        request_hash=body_hash,
        expires_at=now + timedelta(hours=settings.MARKET_PAYMENT_HOURS),
    )
    order = Order(
        listing=listing,
        amount=quantities.money(listing.price_per_tonne * quantity, listing.currency),
        retire_on_delivery=bool(retire_on_delivery),
        beneficiary=beneficiary,
        beneficiary_public=bool(beneficiary_public),
        purpose=purpose,
        reporting_year=reporting_year,
    )
    try:
        with transaction.atomic():
            request.save()
            order.trade_request = request
            order.save()
            left = _order(order, actor)
            if (
                left < 0
                or quantity > left
                or (quantity < listing.minimum_lot and quantity != left)
            ):
                # Another order or the seller got there first: say why as
                # the listing now stands (this raises, undoing the order).
                listing.quantity_left = max(left, 0)
                if left < 0:
                    listing.status = Listing.Status.WITHDRAWN
                _check_orderable(listing, quantity)
                raise StateConflict(
                    _("This listing changed; look at it again."), code="listing_changed"
                )
    except IntegrityError:
        existing = _existing_for_key(actor, key, body_hash)
        if existing is None:
            raise
        return Order.objects.get(trade_request=existing)
    return order


def _check_orderable(listing: Listing, quantity: int) -> None:
    """Refuse an order the listing, as last seen, cannot fill."""
    if listing.status != Listing.Status.OPEN or (
        listing.ends_on is not None and listing.ends_on < _today()
    ):
        raise StateConflict(
            _("This listing is no longer open; choose another on the market."),
            code="listing_closed",
        )
    if listing.quantity_left == 0:
        raise StateConflict(
            _("This listing is sold out; choose another on the market."),
            code="sold_out",
        )
    if quantity > listing.quantity_left:
        raise StateConflict(
            _(
                "Only %(left)s t are left in this listing; %(wanted)s t were "
                "ordered. Order at most %(left)s t."
            )
            % {"left": f"{listing.quantity_left:,}", "wanted": f"{quantity:,}"},
            code="not_enough_left",
            field="quantity",
        )
    if quantity < listing.minimum_lot and quantity != listing.quantity_left:
        raise field_error(
            "quantity",
            _(
                "The minimum lot of this listing is %(lot)s t: order at least "
                "that, or all %(left)s t that are left."
            )
            % {
                "lot": f"{listing.minimum_lot:,}",
                "left": f"{listing.quantity_left:,}",
            },
            "below_minimum_lot",
        )


def _order(order: Order, actor: User) -> int:
    """Move the order's quantity from its listing to its request, lowest
    serials first; returns what the listing had left (-1: not open). Nothing
    moves unless the order fits (trading_order on PostgreSQL)."""
    request = order.trade_request
    if _trades_in_database():
        (left,) = _call("trading_order", request.pk, actor.pk)
        return left
    listing = Listing.objects.select_for_update(no_key=True).get(pk=order.listing_id)
    if listing.status != Listing.Status.OPEN:
        return -1
    if request.quantity > listing.quantity_left or (
        request.quantity < listing.minimum_lot
        and request.quantity != listing.quantity_left
    ):
        return listing.quantity_left
    blocks = list(
        CreditBlock.objects.select_for_update()
        .filter(listing=listing, state=CreditBlock.State.LISTED)
        .order_by("first_serial")
    )
    now = timezone.now()
    moved = _take_front(
        blocks,
        request.quantity,
        now=now,
        taken={
            "state": CreditBlock.State.RESERVED,
            "listing_id": None,
            "trade_request_id": request.pk,
        },
        rest={"state": CreditBlock.State.LISTED, "listing_id": listing.pk},
    )
    Listing.objects.filter(pk=listing.pk).update(
        quantity_left=F("quantity_left") - request.quantity
    )
    _append(
        [
            Movement(
                LedgerEntry.Kind.ORDER,
                block,
                request.from_account_id,
                request.from_account_id,
                listing_id=listing.pk,
            )
            for block in moved
        ],
        actor=actor,
        trade_request=request,
        idempotency_key=request.idempotency_key,
        now=now,
    )
    return listing.quantity_left


def _locked_awaiting_payment(order: Order) -> TradeRequest:
    """The order's request, locked after the seller's account; refused
    unless it still awaits the payment."""
    request = TradeRequest.objects.select_for_update(no_key=True).get(
        pk=order.trade_request_id
    )
    if request.status != TradeRequest.Status.AWAITING_PAYMENT:
        raise StateConflict(
            _(
                "This order is %(status)s; only an order awaiting payment can "
                "be confirmed or declined."
            )
            % {"status": request.get_status_display().lower()},
            code="not_awaiting_payment",
        )
    return request


def confirm_payment(
    *, actor: User, order: Order, amount, paid_on: date, reference: str
) -> Order:
    """The seller records that the buyer's money arrived (the full amount due,
    the day it was paid, the bank's reference); the order then enters the
    registry admins' review queue, with a fresh review period. Confirming the
    same payment again changes nothing."""
    listing = order.listing
    _check_seller(
        actor, listing, _("Only the seller's organization can confirm this payment.")
    )
    amount = checked(quantities.parse_amount, amount, field="amount", currency="CNY")
    reference = (reference or "").strip()
    if not reference:
        raise field_error(
            "reference", _("Give the bank's reference for the payment."), "required"
        )
    if len(reference) > 100:
        raise field_error(
            "reference",
            _("Keep the bank reference under 100 characters."),
            "too_long",
        )
    if not isinstance(paid_on, date):
        raise field_error("paid_on", _("Enter the date the money arrived."), "invalid")
    ordered_on = timezone.localdate(order.trade_request.created_at)
    if paid_on > _today() or paid_on < ordered_on:
        raise field_error(
            "paid_on",
            _("The payment date must be between the order's date and today."),
            "date_out_of_range",
        )
    if amount != order.amount:
        raise field_error(
            "amount",
            _(
                "The amount due for this order is %(due)s CNY; confirm the "
                "payment once the full amount has arrived."
            )
            % {"due": f"{order.amount:,.2f}"},
            "amount_mismatch",
        )
    if (
        order.payment_confirmed_at is not None
        and order.payment_amount == amount
        and order.payment_date == paid_on
        and order.payment_reference == reference
    ):
        return order  # the same confirmation again
    release_expired(account_id=listing.account_id)
    with transaction.atomic():
        _lock_accounts(listing.account_id)
        request = _locked_awaiting_payment(order)
        now = timezone.now()
        request.status = TradeRequest.Status.PENDING
        request.expires_at = now + timedelta(hours=settings.TRADE_REQUEST_TTL_HOURS)
        request.save(update_fields=["status", "expires_at"])
        order.trade_request = request
        order.payment_amount, order.payment_date = amount, paid_on
        order.payment_reference = reference
        order.payment_confirmed_by, order.payment_confirmed_at = actor, now
        order.save(
            update_fields=[
                "payment_amount",
                "payment_date",
                "payment_reference",
                "payment_confirmed_by",
                "payment_confirmed_at",
            ]
        )
    return order


def decline_order(*, actor: User, order: Order, reason: str) -> Order:
    """The seller refuses an order awaiting payment (no payment came, or it
    was refunded), with a reason the buyer sees; its serials return to the
    listing while that is open."""
    listing = order.listing
    _check_seller(
        actor, listing, _("Only the seller's organization can decline this order.")
    )
    reason = (reason or "").strip()
    if not reason:
        raise field_error(
            "reason", _("Give a reason: the buyer will see it."), "required"
        )
    release_expired(account_id=listing.account_id)
    with transaction.atomic():
        _lock_accounts(listing.account_id)
        request = _locked_awaiting_payment(order)
        now = timezone.now()
        request.status = TradeRequest.Status.DECLINED
        request.reviewed_at = now
        request.review_reason = reason
        request.save(update_fields=["status", "reviewed_at", "review_reason"])
        order.trade_request = request
        order.declined_by, order.declined_at = actor, now
        order.decline_reason = reason
        order.save(update_fields=["declined_by", "declined_at", "decline_reason"])
        _release(request, actor)
    return order
