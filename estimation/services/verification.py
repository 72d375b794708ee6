"""Verification: bureau staff submit a finished run of a registered project
for a monitoring period; a verifier of a verification body that neither made
the run nor owns the project approves it (the input fingerprint as checked is
kept, for issuance to compare) or rejects it with reasons. A monitoring period
of a project is verified once: a submission overlapping another verification
that is open or issued is refused here; credits already issued by other means
are refused at issuance, by ``trading.services.issue_batch`` (``period_issued``).
"""

from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import StateConflict, field_error
from estimation import calculations
from estimation.errors import calculation_error_message
from estimation.models import EstimationRun, Verification
from estimation.selectors import (
    can_submit_for,
    current_fingerprint,
    is_verifier_conflicted,
    issuance_for,
    verification_body_of,
)
from registry import services as registry_services
from registry.models import Organization, Project, ProjectEvent, User


def period_text(start: date, end: date) -> str:
    return f"{start.isoformat()} – {end.isoformat()}"


def checked_issuance(
    verification: Verification, buffer_share: Decimal
) -> calculations.Issuance:
    try:
        return issuance_for(verification, buffer_share)
    except calculations.CalculationError as error:
        raise ValidationError(
            calculation_error_message(error), code=error.code
        ) from None


def refuse_nothing_to_issue(issuance: calculations.Issuance) -> None:
    if issuance.quantity < 1:
        raise ValidationError(
            _(
                "After the uncertainty deduction the estimate over this period is "
                "%(net)s t CO2e: less than one whole tonne, so there is nothing to "
                "issue."
            )
            % {"net": issuance.net_t_co2e},
            code="nothing_to_issue",
        )


def refuse_unless_registered(project: Project) -> None:
    if project.status != Project.Status.REGISTERED:
        raise StateConflict(
            _(
                "Project %(code)s is “%(status)s”: only a registered project's "
                "estimates are verified and issued."
            )
            % {"code": project.code, "status": project.get_status_display()},
            code="project_state",
        )


def _check_monitoring_period(
    run: EstimationRun, project: Project, start: date, end: date
) -> None:
    if end < start:
        raise field_error(
            "monitoring_end",
            _("The monitoring period must end after it starts."),
            "period",
        )
    if start < run.period_start or end > run.period_end:
        raise ValidationError(
            _(
                "The monitoring period must lie within the run's period "
                "(%(period)s): the estimate says nothing about other years."
            )
            % {"period": period_text(run.period_start, run.period_end)},
            code="period_outside_run",
        )
    if start < project.crediting_start or end > project.crediting_end:
        raise ValidationError(
            _(
                "The monitoring period must lie within the project's crediting "
                "period (%(period)s)."
            )
            % {"period": period_text(project.crediting_start, project.crediting_end)},
            code="period_outside_crediting",
        )
    if end >= timezone.localdate():
        raise field_error(
            "monitoring_end",
            _(
                "Credits are issued for carbon already stored: the monitoring "
                "period must have ended."
            ),
            "period_not_over",
        )


@transaction.atomic
def submit_for_verification(
    *,
    actor: User,
    run: EstimationRun,
    monitoring_start: date | None = None,
    monitoring_end: date | None = None,
    note: str = "",
    revises: Verification | None = None,
) -> Verification:
    """Ask for an independent check of a finished run of a registered project
    over a monitoring period (the run's period unless another is given, within
    it); ``revises`` is the rejected verification this one answers."""
    run = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if run.project_id is None:
        raise ValidationError(
            _("Only an estimate of a registered project can be verified."),
            code="no_project",
        )
    if not can_submit_for(actor, run):
        raise PermissionDenied(
            _("Only bureau staff acting for %(organization)s can submit its runs.")
            % {"organization": run.organization.display_name}
        )
    if run.status != EstimationRun.Status.SUCCEEDED:
        raise StateConflict(
            _(
                "Only a finished estimation run can be verified; this one is "
                "“%(status)s”."
            )
            % {"status": run.get_status_display()},
            code="run_state",
        )
    project = registry_services.lock_project(run.project_id)
    refuse_unless_registered(project)
    start = monitoring_start or run.period_start
    end = monitoring_end or run.period_end
    _check_monitoring_period(run, project, start, end)
    if run.verifications.filter(status__in=Verification.OPEN_STATUSES).exists():
        raise StateConflict(
            _(
                "This run has already been submitted for verification; a run is "
                "verified and issued once."
            ),
            code="already_submitted",
        )
    overlapping = (
        project.verifications.filter(
            status__in=Verification.OPEN_STATUSES,
            monitoring_start__lte=end,
            monitoring_end__gte=start,
        )
        .order_by("pk")
        .first()
    )
    if overlapping is not None:
        raise StateConflict(
            _(
                "Verification #%(pk)s of this project for %(period)s is "
                "“%(status)s” and overlaps this monitoring period: a period is "
                "verified and issued once."
            )
            % {
                "pk": overlapping.pk,
                "period": period_text(
                    overlapping.monitoring_start, overlapping.monitoring_end
                ),
                "status": overlapping.get_status_display(),
            },
            code="period_overlap",
        )
    if revises is not None and (
        revises.project_id != project.pk
        or revises.status != Verification.Status.REJECTED
    ):
        raise ValidationError(
            _("Only a rejected verification of the same project can be revised."),
            code="revises",
        )
    verification = Verification(
        run=run,
        project=project,
        monitoring_start=start,
        monitoring_end=end,
        revises=revises,
        note=note.strip(),
        submitted_by=actor,
    )
    refuse_nothing_to_issue(
        checked_issuance(verification, run.methodology.buffer_share)
    )
    verification.full_clean()
    verification.save()
    registry_services.record_project_event(
        project=project,
        kind=ProjectEvent.Kind.VERIFICATION_SUBMITTED,
        actor=actor,
        reference=f"#{verification.pk} · {period_text(start, end)}",
        note=verification.note,
    )
    return verification


def _locked_submitted(verification: Verification) -> Verification:
    verification = (
        Verification.objects.select_for_update(of=("self",))
        .select_related("run__organization", "project__owner")
        .get(pk=verification.pk)
    )
    if verification.status != Verification.Status.SUBMITTED:
        raise StateConflict(
            _("This verification is already “%(status)s”; it cannot be decided again.")
            % {"status": verification.get_status_display()},
            code="not_submitted",
        )
    return verification


def _check_verifier(actor: User, verification: Verification) -> Organization:
    body = verification_body_of(actor)
    if body is None:
        raise PermissionDenied(
            _("Only a verifier acting for a verification body can verify estimates.")
        )
    if is_verifier_conflicted(actor, verification):
        raise PermissionDenied(
            _(
                "You act for the organization that made or owns this estimate; a "
                "verifier of another organization must verify it."
            )
        )
    return body


def _decide(
    verification: Verification,
    *,
    actor: User,
    body: Organization,
    status: str,
    reasons: str,
    kind: str,
) -> Verification:
    verification.status = status
    verification.verifier = actor
    verification.verification_body = body
    verification.reasons = reasons.strip()
    verification.decided_at = timezone.now()
    verification.save()
    registry_services.record_project_event(
        project=verification.project,
        kind=kind,
        actor=actor,
        reference=f"#{verification.pk}",
        note=verification.reasons,
    )
    return verification


@transaction.atomic
def approve_verification(
    *, actor: User, verification: Verification, reasons: str = ""
) -> Verification:
    """The verifier confirms the calculation; the fingerprint of the run's inputs
    as checked now is kept, for issuance to compare."""
    verification = _locked_submitted(verification)
    body = _check_verifier(actor, verification)
    fingerprint = current_fingerprint(verification.run)
    if fingerprint != verification.run.fingerprint:
        raise StateConflict(
            _(
                "The inputs of run #%(run)s have changed since it was computed (its "
                "boundary, land-cover file, class scheme or methodology): its "
                "numbers no longer follow from them. Reject it so that the "
                "submitter makes a new run."
            )
            % {"run": verification.run_id},
            code="fingerprint",
        )
    verification.fingerprint = fingerprint
    return _decide(
        verification,
        actor=actor,
        body=body,
        status=Verification.Status.APPROVED,
        reasons=reasons,
        kind=ProjectEvent.Kind.VERIFICATION_APPROVED,
    )


@transaction.atomic
def reject_verification(
    *, actor: User, verification: Verification, reasons: str
) -> Verification:
    """The verifier refuses the calculation, saying why; the submitter may
    answer with a revised submission."""
    if not reasons.strip():
        raise field_error(
            "reasons",
            _("Give the reasons: the submitter must know what to fix."),
            "reasons",
        )
    verification = _locked_submitted(verification)
    body = _check_verifier(actor, verification)
    return _decide(
        verification,
        actor=actor,
        body=body,
        status=Verification.Status.REJECTED,
        reasons=reasons,
        kind=ProjectEvent.Kind.VERIFICATION_REJECTED,
    )
