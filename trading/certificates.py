"""Retirement certificates: made when a retirement settles, and checked against
the journal's hash chain whenever anyone asks.

``issue_certificate`` writes (called by ``trading.services.approve_request`` in
its transaction); ``check_certificate`` reads. The check costs the same for any
size of journal: it recomputes each retire entry's content hash and link, and
compares the links with the entries just before and after it (or with the head,
for the last entry), instead of walking the whole chain as
``trading.verification`` does every night.
"""

from dataclasses import dataclass, field

from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from trading import chain
from trading.models import Certificate, LedgerEntry, LedgerHead, TradeRequest


def issue_certificate(*, request: TradeRequest) -> Certificate:
    """The certificate of a retirement request that has just settled."""
    certificate = Certificate.objects.create(
        trade_request=request,
        account_id=request.from_account_id,
        beneficiary=request.beneficiary,
        beneficiary_public=request.beneficiary_public,
        purpose=request.purpose or TradeRequest.Purpose.OTHER,
        reporting_year=request.reporting_year,
        quantity=request.quantity,
        retired_at=request.reviewed_at,
    )
    # Numbered from the primary key, like accounts: no counter row to lock.
    year = timezone.localtime(certificate.retired_at).year
    certificate.number = f"BJ-RC-{year}-{certificate.pk:06d}"
    certificate.save(update_fields=["number"])
    return certificate


@dataclass
class EntryCheck:
    entry: LedgerEntry
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CertificateCheck:
    certificate: Certificate
    entries: list[EntryCheck]
    problems: list[str]

    @property
    def valid(self) -> bool:
        return not self.problems and all(check.ok for check in self.entries)


def retire_entries(certificate: Certificate) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(
            trade_request_id=certificate.trade_request_id,
            kind=LedgerEntry.Kind.RETIRE,
        )
        .select_related("batch__project")
        .defer("batch__project__boundary")
        .order_by("sequence")
    )


def check_certificate(certificate: Certificate) -> CertificateCheck:
    """Whether the journal still proves this certificate: one query for its
    entries with the hashes of the entries before and after each (a second,
    for the head, only when its last entry is the journal's last)."""
    neighbour = LedgerEntry.objects.order_by()
    entries = list(
        LedgerEntry.objects.filter(
            trade_request_id=certificate.trade_request_id,
            kind=LedgerEntry.Kind.RETIRE,
        )
        .annotate(
            hash_before=Subquery(
                neighbour.filter(sequence=OuterRef("sequence") - 1).values(
                    "entry_hash"
                )[:1]
            ),
            link_after=Subquery(
                neighbour.filter(sequence=OuterRef("sequence") + 1).values(
                    "previous_hash"
                )[:1]
            ),
        )
        .order_by("sequence")
    )
    problems = []
    if not entries:
        problems.append(_("The journal holds no retirement behind this certificate."))
    elif sum(entry.quantity for entry in entries) != certificate.quantity:
        problems.append(
            _("The certificate's quantity differs from its retire entries' total.")
        )
    head = None
    if entries and entries[-1].link_after is None:
        head = LedgerHead.objects.filter(pk=1).values_list("last_hash").first()
    checks = []
    for entry in entries:
        check = EntryCheck(entry)
        if chain.content_hash(entry.payload()) != entry.content_hash:
            check.problems.append(
                _("The entry's contents no longer match its content hash.")
            )
        link = chain.link_hash(entry.previous_hash, entry.sequence, entry.content_hash)
        if link != entry.entry_hash:
            check.problems.append(_("The entry's hash does not match its link."))
        expected_previous = entry.hash_before
        if expected_previous is None and entry.sequence == 1:
            expected_previous = chain.GENESIS
        if entry.previous_hash != expected_previous:
            check.problems.append(
                _("The entry does not link to the entry before it in the journal.")
            )
        if entry.link_after is not None:
            if entry.link_after != entry.entry_hash:
                check.problems.append(
                    _("The entry after it in the journal does not link to it.")
                )
        elif head is not None and head[0] != entry.entry_hash:
            check.problems.append(_("The journal's head does not end with this entry."))
        checks.append(check)
    return CertificateCheck(certificate=certificate, entries=checks, problems=problems)
