"""Issuance: a registry admin issues an approved verification as one credit
batch through ``trading.services.issue_batch``. No run is issued twice, and
nothing is issued if the run's inputs have changed since the verifier checked
them (the land-cover files are hashed again here, the one step that reads
them: credits are about to exist) or the boundary now overlaps another live
project. A monitoring period already issued for the project is refused by
``issue_batch`` itself (code ``period_issued``), whoever asks for it.
"""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common import quantities
from common.errors import StateConflict, field_error
from estimation import calculations
from estimation.models import EstimationRun, Verification, percent_text
from estimation.selectors import can_issue, current_fingerprint
from estimation.services.datasets import stored_file_sha256
from estimation.services.verification import (
    checked_issuance,
    refuse_nothing_to_issue,
    refuse_unless_registered,
)
from registry import services as registry_services
from registry.models import Project, ProjectEvent, User
from registry.selectors import holding_account
from trading import services as trading_services


def _buffer_share(
    verification: Verification, value, reason: str
) -> tuple[Decimal, str]:
    default = verification.run.methodology.buffer_share
    if value is None or value == "":
        return default, reason.strip()
    try:
        share = calculations.share_from(value, name="buffer share")
    except calculations.CalculationError:
        raise field_error(
            "buffer_share",
            _("The buffer share must be at least 0 and less than 100 percent."),
            "buffer_share",
        ) from None
    if not quantities.within_places(share, quantities.SHARE_PLACES):  # as stored
        raise field_error(
            "buffer_share",
            _("Give the buffer share to at most two decimals of a percent."),
            "buffer_share",
        )
    if share != default and not reason.strip():
        raise field_error(
            "buffer_share_reason",
            _(
                "Give the reason for a buffer share other than the methodology's "
                "%(default)s %%."
            )
            % {"default": percent_text(default)},
            "buffer_share_reason",
        )
    return share, reason.strip()


@transaction.atomic
def issue_verification(
    *,
    actor: User,
    verification: Verification,
    buffer_share=None,
    buffer_share_reason: str = "",
) -> Verification:
    """Issue an approved verification as one credit batch: whole tonnes over
    the monitoring period after the uncertainty deduction (rounded down), of
    which floor(quantity x buffer share) go to the buffer pool and the rest to
    the project owner's holding account. ``buffer_share`` (0 to below 1)
    overrides the methodology's, with a reason. One transaction: a refusal
    issues nothing."""
    if not can_issue(actor):
        raise PermissionDenied(_("Only a registry admin can issue credits."))
    # Only the verification's row: the project's is locked later, in order.
    verification = (
        Verification.objects.select_for_update(of=("self",))
        .select_related("run__methodology", "project")
        .get(pk=verification.pk)
    )
    refusals = {
        Verification.Status.SUBMITTED: _(
            "This run has not been verified yet: only an approved verification "
            "is issued."
        ),
        Verification.Status.REJECTED: _(
            "This verification was rejected: nothing can be issued for it."
        ),
        Verification.Status.ISSUED: _(
            "Credits were already issued for this verification (batch %(batch)s); "
            "a run is issued once."
        ),
    }
    if verification.status in refusals:
        message = refusals[verification.status]
        if verification.status == Verification.Status.ISSUED:
            message %= {"batch": verification.batch.serial_label}
        raise StateConflict(message, code=f"not_approved_{verification.status}")
    share, reason = _buffer_share(verification, buffer_share, buffer_share_reason)
    project = Project.objects.get(pk=verification.project_id)
    refuse_unless_registered(project)
    run = verification.run
    if run.verifications.filter(status=Verification.Status.ISSUED).exists():
        raise StateConflict(
            _("Credits were already issued for run #%(run)s; a run is issued once.")
            % {"run": run.pk},
            code="run_issued",
        )
    if current_fingerprint(run) != verification.fingerprint or _changed_files(run):
        raise StateConflict(
            _(
                "The inputs of run #%(run)s have changed since the verifier checked "
                "them (its boundary, land-cover file, class scheme or methodology): "
                "nothing was issued. A new run must be made and verified."
            )
            % {"run": run.pk},
            code="fingerprint",
        )
    # The boundary check takes registration's lock before the project's row,
    # in the order registration takes them, so the two never deadlock.
    registry_services.refuse_live_overlaps(project=project)
    project = registry_services.lock_project(project.pk)
    refuse_unless_registered(project)
    issuance = checked_issuance(verification, share)
    refuse_nothing_to_issue(issuance)
    holder = holding_account(project.owner)
    if holder is None:
        raise ValidationError(
            _("%(owner)s has no holding account to receive the credits.")
            % {"owner": project.owner.display_name},
            code="no_holding_account",
        )
    batch = trading_services.issue_batch(
        actor=actor,
        project=project,
        # The vintage is the year in which the monitoring period ends.
        vintage=verification.monitoring_end.year,
        monitoring_start=verification.monitoring_start,
        monitoring_end=verification.monitoring_end,
        quantity=issuance.quantity,
        buffer_quantity=issuance.buffer_quantity,
        holder_account=holder,
        source=f"estimation-run:{run.pk} verification:{verification.pk}",
    )
    verification.status = Verification.Status.ISSUED
    verification.batch = batch
    verification.uncertainty_deduction = run.methodology.uncertainty_deduction
    verification.buffer_share = share
    verification.buffer_share_reason = reason
    verification.issued_by = actor
    verification.issued_at = timezone.now()
    verification.full_clean(exclude=["run", "project", "revises", "batch"])
    verification.save()
    registry_services.record_project_event(
        project=project,
        kind=ProjectEvent.Kind.CREDITS_ISSUED,
        actor=actor,
        reference=f"{batch.serial_label} · {batch.quantity} t CO2e",
        note=reason,
    )
    return verification


def _changed_files(run: EstimationRun) -> bool:
    """A land-cover file of the run no longer holds the bytes hashed at upload
    (fingerprints use that stored hash and never read the file)."""
    return any(
        stored_file_sha256(dataset) != dataset.sha256
        for dataset in (run.dataset, run.baseline_dataset)
        if dataset is not None
    )
