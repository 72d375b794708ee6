"""What moves: credit batches, serial blocks held by accounts, the append-only
journal, trade requests and their review.

Invariants (design section 5), enforced here, in ``trading.services`` and in the
database (constraints; on PostgreSQL an exclusion constraint on serial ranges and
append-only triggers; on SQLite the same triggers):

1. Per batch: issued = active + reserved + retired + cancelled.
2. A batch's blocks tile its range exactly; quantity = last - first + 1.
3. No account spends more than its active credits: a request reserves serials.
4. Retired and cancelled blocks never change again.
5. Every change of holdings is a journal entry; the journal only grows, and its
   hash chain verifies.
6. A request settles at most once; one idempotency key acts once.
7. The approver of a request is never its initiator.

Each transfer nets to zero: blocks change account or state, never number.
"""

import secrets

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common import quantities
from registry.models import Account, Project, User
from trading import chain


class CreditBatch(models.Model):
    """Credits issued for one project and vintage: whole tonnes of CO2e, one
    globally unique serial number per tonne, held as the range first..last.

    Where the credits are now lives in ``CreditBlock``; every movement is in
    ``LedgerEntry``. Issued through ``trading.services.issue_batch``, its only
    writer. The table keeps the name it had when the model lived in
    ``registry`` (migration trading 0009): the exclusion constraints and the
    ledger's owner-rights functions in ``trading/db_guards.py`` name it.
    """

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="batches"
    )
    vintage = models.PositiveSmallIntegerField(_("vintage"))
    monitoring_start = models.DateField(_("monitoring period start"))
    monitoring_end = models.DateField(_("monitoring period end"))
    quantity = models.PositiveBigIntegerField(_("quantity (t CO2e)"))
    buffer_quantity = models.PositiveBigIntegerField(_("buffer withheld (t CO2e)"))
    first_serial = models.PositiveBigIntegerField(_("first serial"), unique=True)
    last_serial = models.PositiveBigIntegerField(_("last serial"), unique=True)
    source = models.CharField(
        _("source"),
        max_length=100,
        blank=True,
        help_text=_("What the issuance rests on, e.g. an estimation run."),
    )
    issued_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="batches_issued"
    )
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)

    class Meta:
        db_table = "registry_creditbatch"
        ordering = ["-issued_at", "-pk"]
        verbose_name = _("credit batch")
        verbose_name_plural = _("credit batches")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="batch_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(first_serial__gte=1), name="batch_serials_from_one"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    last_serial=models.F("first_serial") + models.F("quantity") - 1
                ),
                name="batch_range_matches_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(buffer_quantity__lt=models.F("quantity")),
                name="batch_buffer_below_quantity",
            ),
        ]

    def __str__(self) -> str:
        return self.serial_label

    @property
    def serial_label(self) -> str:
        """``<project code>-V<vintage>-<first>-<last>``, e.g.
        BJ-520521-00001-V2025-0000000001-0000004210."""
        return serial_label(
            self.project.code, self.vintage, self.first_serial, self.last_serial
        )


def serial_label(project_code: str, vintage: int, first: int, last: int) -> str:
    return f"{project_code}-V{vintage}-{first:010d}-{last:010d}"


class SerialAllocator(models.Model):
    """One row: the next free serial number in the whole registry."""

    next_serial = models.PositiveBigIntegerField(default=1)

    class Meta:
        verbose_name = _("serial allocator")
        verbose_name_plural = _("serial allocators")

    def __str__(self) -> str:
        return str(self.next_serial)


class TradeRequest(models.Model):
    """A transfer, retirement or cancellation, pending until a registry admin
    approves (it settles) or rejects it, or it expires (its serials are freed)."""

    class Kind(models.TextChoices):
        TRANSFER = "transfer", _("Transfer")
        RETIREMENT = "retirement", _("Retirement")
        CANCELLATION = "cancellation", _("Cancellation")

    class Status(models.TextChoices):
        # A market order waits for its seller to confirm the payment before it
        # enters the review queue (trading.market).
        AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
        PENDING = "pending", _("Pending review")
        SETTLED = "settled", _("Settled")
        REJECTED = "rejected", _("Rejected")
        DECLINED = "declined", _("Declined by the seller")
        EXPIRED = "expired", _("Expired")

    # Statuses in which a request holds its reserved serials.
    OPEN_STATUSES = (Status.AWAITING_PAYMENT, Status.PENDING)

    class Purpose(models.TextChoices):
        VOLUNTARY = "voluntary", _("Voluntary carbon neutrality")
        EVENT = "event", _("Carbon-neutral event")
        PRODUCT = "product", _("Carbon-neutral product or service")
        COMPLIANCE = "compliance", _("Compliance offsetting")
        ECOLOGICAL_COMPENSATION = "compensation", _("Ecological compensation")
        OTHER = "other", _("Other")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    from_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="requests_out"
    )
    to_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="requests_in"
    )
    quantity = models.PositiveBigIntegerField(_("quantity (t CO2e)"))
    batch = models.ForeignKey(
        CreditBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
        verbose_name=_("batch"),
    )
    vintage = models.PositiveSmallIntegerField(_("vintage"), null=True, blank=True)
    price_per_tonne = models.DecimalField(
        _("price per t CO2e"),
        max_digits=quantities.MAX_PRICE_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    beneficiary = models.CharField(_("beneficiary"), max_length=200, blank=True)
    beneficiary_public = models.BooleanField(
        _("name the beneficiary publicly"), default=True
    )
    purpose = models.CharField(
        _("purpose"), max_length=16, choices=Purpose.choices, blank=True
    )
    note = models.TextField(_("note"), blank=True)
    reporting_year = models.PositiveSmallIntegerField(
        _("reporting year"), null=True, blank=True
    )
    initiator = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="trade_requests"
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    reviewed_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="trade_requests_reviewed",
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_reason = models.TextField(_("review reason"), blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("trade request")
        verbose_name_plural = _("trade requests")
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="request_quantity_positive"
            ),
            models.CheckConstraint(
                condition=~Q(from_account=F("to_account")),
                name="request_accounts_differ",
            ),
            models.UniqueConstraint(
                fields=["initiator", "idempotency_key"], name="request_idempotency"
            ),
            models.CheckConstraint(
                condition=Q(price_per_tonne__isnull=True) | Q(price_per_tonne__gte=0),
                name="request_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.quantity} t"


class CreditBlock(models.Model):
    """A contiguous run of serials of one batch, held by one account, in one state."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        LISTED = "listed", _("Listed for sale")
        RESERVED = "reserved", _("Reserved")
        RETIRED = "retired", _("Retired")
        CANCELLED = "cancelled", _("Cancelled")

    FINAL_STATES = (State.RETIRED, State.CANCELLED)

    batch = models.ForeignKey(
        CreditBatch, on_delete=models.PROTECT, related_name="blocks"
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="blocks"
    )
    first_serial = models.PositiveBigIntegerField(_("first serial"))
    last_serial = models.PositiveBigIntegerField(_("last serial"))
    quantity = models.PositiveBigIntegerField(_("quantity (t CO2e)"))
    state = models.CharField(_("state"), max_length=12, choices=State.choices)
    trade_request = models.ForeignKey(
        TradeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="blocks",
    )
    listing = models.ForeignKey(
        "Listing",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="blocks",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch", "first_serial"]
        verbose_name = _("credit block")
        verbose_name_plural = _("credit blocks")
        indexes = [
            models.Index(fields=["account", "state"]),
            models.Index(fields=["batch", "first_serial"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="block_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(last_serial=F("first_serial") + F("quantity") - 1),
                name="block_range_matches_quantity",
            ),
            models.CheckConstraint(
                condition=Q(state="reserved", trade_request__isnull=False)
                | (~Q(state="reserved") & Q(trade_request__isnull=True)),
                name="block_reserved_for_a_request",
            ),
            models.CheckConstraint(
                condition=Q(state="listed", listing__isnull=False)
                | (~Q(state="listed") & Q(listing__isnull=True)),
                name="block_listed_on_a_listing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.first_serial}-{self.last_serial} {self.state}"


class LedgerEntry(models.Model):
    """One change of holdings. Never updated or deleted (database triggers refuse
    it); ``entry_hash`` chains it to the entry before (see ``trading/chain.py``).
    ``sequence`` and the three hashes are assigned on insert: by a trigger on
    PostgreSQL (hence the database defaults, so the insert returns them), by
    ``trading.services`` on SQLite."""

    class Kind(models.TextChoices):
        ISSUE = "issue", _("Issue")
        BUFFER = "buffer", _("Buffer withholding")
        RESERVE = "reserve", _("Reserve")
        RELEASE = "release", _("Release")
        TRANSFER = "transfer", _("Transfer")
        RETIRE = "retire", _("Retire")
        CANCEL = "cancel", _("Cancel")
        # The market (trading.market): credits offered, taken back, ordered
        # from a listing, and an unsettled order's credits returned to it.
        LIST = "list", _("List for sale")
        DELIST = "delist", _("Take off the market")
        ORDER = "order", pgettext_lazy("journal entry kind", "Order")
        RETURN = "return", _("Return to listing")

    sequence = models.PositiveBigIntegerField(_("sequence"), unique=True, db_default=0)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    batch = models.ForeignKey(
        CreditBatch, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    first_serial = models.PositiveBigIntegerField(_("first serial"))
    last_serial = models.PositiveBigIntegerField(_("last serial"))
    quantity = models.PositiveBigIntegerField(_("quantity (t CO2e)"))
    from_account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries_out",
    )
    to_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries_in"
    )
    price_per_tonne = models.DecimalField(
        _("price per t CO2e"),
        max_digits=quantities.MAX_PRICE_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    trade_request = models.ForeignKey(
        TradeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    listing = models.ForeignKey(
        "Listing",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    # Null for the registry's own scheduled work (expiry of stale requests).
    actor = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("recorded at"))
    content_hash = models.CharField(_("content hash"), max_length=64, db_default="")
    previous_hash = models.CharField(_("previous hash"), max_length=64, db_default="")
    entry_hash = models.CharField(
        _("entry hash"), max_length=64, unique=True, db_default=""
    )

    class Meta:
        ordering = ["sequence"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["from_account", "sequence"]),
            models.Index(fields=["to_account", "sequence"]),
            models.Index(fields=["kind", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="entry_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(last_serial=F("first_serial") + F("quantity") - 1),
                name="entry_range_matches_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} {self.kind} {self.quantity} t"

    def payload(self) -> dict:
        """The fields ``content_hash`` covers (the sequence is in the link), as
        PostgreSQL's chaining trigger renders them (trading/db_guards.py).
        ``listing`` is there only for the market's entries, so the hashes of
        entries made before the market existed stay as they were."""
        payload = {
            "kind": self.kind,
            "batch": self.batch_id,
            "first_serial": self.first_serial,
            "last_serial": self.last_serial,
            "quantity": self.quantity,
            "from_account": self.from_account_id,
            "to_account": self.to_account_id,
            "price_per_tonne": (
                None
                if self.price_per_tonne is None
                # Fen, as the PostgreSQL trigger hashes it (trading/db_guards.py).
                else str(quantities.money(self.price_per_tonne, "CNY"))
            ),
            "currency": self.currency,
            "trade_request": self.trade_request_id,
            "actor": self.actor_id,
            "idempotency_key": self.idempotency_key,
            "created_at": chain.microseconds(self.created_at),
        }
        if self.listing_id is not None:
            payload["listing"] = self.listing_id
        return payload


class LedgerHead(models.Model):
    """One row: the last entry's sequence and hash. Locked by every transaction
    that appends, as its last step, so the chain has one order."""

    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("ledger head")
        verbose_name_plural = _("ledger heads")

    def __str__(self) -> str:
        return f"{self.last_sequence} {self.last_hash[:12]}"


class LedgerCheck(models.Model):
    """The result of one ``verify_ledger`` run (nightly, or by hand)."""

    ran_at = models.DateTimeField(_("ran at"), auto_now_add=True)
    ok = models.BooleanField(_("passed"))
    summary = models.JSONField(_("summary"), default=dict)
    violations = models.JSONField(_("violations"), default=list)

    class Meta:
        ordering = ["-ran_at"]
        verbose_name = _("ledger check")
        verbose_name_plural = _("ledger checks")

    def __str__(self) -> str:
        return f"{self.ran_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"


def new_certificate_token() -> str:
    """128 random bits, URL-safe: the certificate's public address."""
    return secrets.token_urlsafe(16)


class Certificate(models.Model):
    """The public proof of one settled retirement, made in the transaction that
    settles it (``trading.certificates.issue_certificate``).

    ``number`` (e.g. BJ-RC-2026-000123) is for people to cite; it is sequential,
    so the public addresses use ``token`` instead: 128 random bits, so that a
    doctored or mistyped address finds nothing rather than another real
    certificate. The serial ranges, projects and vintages are those of the
    request's retire entries in the journal, whose hashes prove it."""

    number = models.CharField(  # noqa: DJ001 (NULL until assigned; unique)
        _("certificate number"), max_length=24, unique=True, null=True, editable=False
    )
    token = models.CharField(
        _("verification code"),
        max_length=32,
        unique=True,
        default=new_certificate_token,
        editable=False,
    )
    trade_request = models.OneToOneField(
        TradeRequest, on_delete=models.PROTECT, related_name="certificate"
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="certificates",
        verbose_name=_("retired from account"),
    )
    beneficiary = models.CharField(_("beneficiary"), max_length=200)
    beneficiary_public = models.BooleanField(_("beneficiary named publicly"))
    purpose = models.CharField(
        _("purpose"), max_length=16, choices=TradeRequest.Purpose.choices
    )
    reporting_year = models.PositiveSmallIntegerField(
        _("reporting year"), null=True, blank=True
    )
    quantity = models.PositiveBigIntegerField(_("quantity (t CO2e)"))
    retired_at = models.DateTimeField(_("retired at"))

    class Meta:
        ordering = ["-retired_at", "-pk"]
        verbose_name = _("retirement certificate")
        verbose_name_plural = _("retirement certificates")
        indexes = [models.Index(fields=["retired_at", "id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="certificate_quantity_positive"
            )
        ]

    def __str__(self) -> str:
        return self.number or f"#{self.pk}"

    @property
    def public_beneficiary(self) -> str:
        """The beneficiary as anyone may see it (certificate, verification page,
        PDF, retirement lists and CSV, API, the holder's dashboard tag): their
        name if they chose to be named, else empty. The one place this privacy
        rule is decided."""
        return self.beneficiary if self.beneficiary_public else ""


class JournalAnchor(models.Model):
    """A journal head the registry published: the last entry's sequence and
    hash at ``published_at``, signed with the registry's Ed25519 key
    (``trading.anchors``; the signed bytes are defined in ``trading.chain``).
    Copies kept outside the registry are what make a rewritten journal show:
    these rows are the registry's own list of what it published."""

    sequence = models.PositiveBigIntegerField(_("sequence"))
    entry_hash = models.CharField(_("entry hash"), max_length=64)
    published_at = models.DateTimeField(_("published at"))
    key_id = models.CharField(_("key fingerprint"), max_length=64)
    public_key = models.CharField(_("public key"), max_length=44)
    signature = models.CharField(_("signature"), max_length=88)

    class Meta:
        ordering = ["-sequence", "-published_at"]
        verbose_name = _("published journal head")
        verbose_name_plural = _("published journal heads")
        constraints = [
            # Publishing is idempotent: one signed copy of a head per key.
            models.UniqueConstraint(
                fields=["sequence", "key_id"], name="anchor_once_per_head_and_key"
            ),
            models.CheckConstraint(
                condition=Q(sequence__gt=0), name="anchor_sequence_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} {self.entry_hash[:12]}"

    def document(self) -> dict:
        """The head as published (JSON): what anyone may keep and check later."""
        return {
            "format": chain.HEAD_FORMAT,
            "sequence": self.sequence,
            "entry_hash": self.entry_hash,
            "published_at": chain.head_time(self.published_at),
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }


class Listing(models.Model):
    """Credits a holder offers on the public market: part of one batch, at a
    price per tonne, in lots of at least ``minimum_lot``.

    Listing moves the serials from the holder's active credits to the state
    ``listed`` (blocks pointing here), so they cannot be sold twice or moved
    elsewhere; ``quantity_left`` is always what those blocks hold (checked by
    ``verify_ledger``). Orders take serials from it; the holder may lower or
    withdraw it, and it expires after ``ends_on``: what is unsold goes back.
    Written only by ``trading.market``."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("listing status", "Open")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        EXPIRED = "expired", _("Expired")

    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="listings",
        verbose_name=_("seller's account"),
    )
    batch = models.ForeignKey(
        CreditBatch,
        on_delete=models.PROTECT,
        related_name="listings",
        verbose_name=_("batch"),
    )
    quantity_listed = models.PositiveBigIntegerField(_("quantity listed (t CO2e)"))
    quantity_left = models.PositiveBigIntegerField(_("quantity left (t CO2e)"))
    price_per_tonne = models.DecimalField(
        _("price per t CO2e"), max_digits=quantities.MAX_PRICE_DIGITS, decimal_places=2
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    minimum_lot = models.PositiveBigIntegerField(_("minimum lot (t CO2e)"))
    ends_on = models.DateField(
        _("open until"),
        null=True,
        blank=True,
        help_text=_("The last day the listing is open (China Standard Time)."),
    )
    note = models.TextField(_("note"), blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.OPEN
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="listings"
    )
    created_at = models.DateTimeField(_("listed at"), auto_now_add=True)
    closed_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="listings_closed",
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    request_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
        # The public market's sorts (trading.selectors.LISTING_ORDERINGS) read
        # one page of open listings in index order.
        indexes = [
            models.Index(fields=["status", "price_per_tonne", "id"]),
            models.Index(fields=["status", "quantity_left", "id"]),
            models.Index(fields=["status", "-created_at", "-id"]),
            models.Index(fields=["status", "ends_on"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_listed__gt=0), name="listing_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(quantity_left__lte=F("quantity_listed")),
                name="listing_left_at_most_listed",
            ),
            models.CheckConstraint(
                condition=Q(minimum_lot__gte=1)
                & Q(minimum_lot__lte=F("quantity_listed")),
                name="listing_minimum_lot_in_range",
            ),
            models.CheckConstraint(
                condition=Q(price_per_tonne__gt=0), name="listing_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(quantity_left=0),
                name="listing_closed_holds_nothing",
            ),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"], name="listing_idempotency"
            ),
        ]

    def __str__(self) -> str:
        return f"L{self.pk} {self.quantity_left}/{self.quantity_listed} t"

    @property
    def number(self) -> str:
        """What people cite: L-000042."""
        return f"L-{self.pk:06d}"


class Order(models.Model):
    """A buyer's order from a listing. Its credits are reserved by
    ``trade_request``, a transfer from the seller to the buyer whose status is
    the order's: awaiting the seller's confirmation that the money arrived,
    then pending the registry admins' review, then settled (or declined,
    rejected, expired: the credits return to the listing). The registry never
    holds money; it records that the money moved (``payment_*``). With
    ``retire_on_delivery`` the settlement retires the credits at once for the
    beneficiary, through ``retirement_request``, which carries the certificate.
    Written only by ``trading.market``."""

    listing = models.ForeignKey(
        Listing, on_delete=models.PROTECT, related_name="orders"
    )
    trade_request = models.OneToOneField(
        TradeRequest, on_delete=models.PROTECT, related_name="order"
    )
    amount = models.DecimalField(
        _("amount due"), max_digits=quantities.MAX_AMOUNT_DIGITS, decimal_places=2
    )
    retire_on_delivery = models.BooleanField(_("retire on delivery"), default=False)
    beneficiary = models.CharField(_("beneficiary"), max_length=200, blank=True)
    beneficiary_public = models.BooleanField(
        _("name the beneficiary publicly"), default=True
    )
    purpose = models.CharField(
        _("purpose"), max_length=16, choices=TradeRequest.Purpose.choices, blank=True
    )
    reporting_year = models.PositiveSmallIntegerField(
        _("reporting year"), null=True, blank=True
    )
    retirement_request = models.OneToOneField(
        TradeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="delivered_order",
    )
    payment_amount = models.DecimalField(
        _("amount received"),
        max_digits=quantities.MAX_AMOUNT_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
    )
    payment_date = models.DateField(_("payment date"), null=True, blank=True)
    payment_reference = models.CharField(
        _("bank reference"), max_length=100, blank=True
    )
    payment_confirmed_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments_confirmed",
    )
    payment_confirmed_at = models.DateTimeField(
        _("payment confirmed at"), null=True, blank=True
    )
    declined_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders_declined",
    )
    declined_at = models.DateTimeField(_("declined at"), null=True, blank=True)
    decline_reason = models.TextField(_("reason for declining"), blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="order_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(retire_on_delivery=False) | ~Q(beneficiary=""),
                name="order_retirement_names_beneficiary",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        """What people cite: O-000042."""
        return f"O-{self.pk:06d}"
