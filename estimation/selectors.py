"""Reads for the estimation app that more than one caller needs."""

from decimal import Decimal

from django.db.models import Q, QuerySet

from estimation import calculations, fingerprints
from estimation.models import (
    ClassScheme,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    Verification,
)
from registry.models import Organization, User
from registry.roles import Role
from registry.selectors import has_role, is_member, is_staff_of


def scheme_lookup(scheme: ClassScheme) -> dict[str, str]:
    """Class code -> ecosystem key."""
    return dict(scheme.mappings.values_list("code", "ecosystem"))


def get_default_methodology() -> Methodology | None:
    return Methodology.objects.filter(is_default=True).first()


def list_methodologies() -> QuerySet[Methodology]:
    return Methodology.objects.order_by("slug", "-version")


def list_datasets(*, user: User) -> QuerySet[LandCoverDataset]:
    """Datasets of the user's organizations (all for registry admins)."""
    datasets = LandCoverDataset.objects.select_related("scheme", "organization")
    if has_role(user, Role.REGISTRY_ADMIN):
        return datasets
    if not user.is_authenticated:
        return datasets.none()
    return datasets.filter(organization__memberships__user=user).distinct()


def list_runs(*, user: User) -> QuerySet[EstimationRun]:
    """Runs of the user's organizations (all for registry admins); a verifier
    also sees the runs submitted to them: those with a verification they may
    review or have reviewed (``reviewable_verifications``)."""
    runs = EstimationRun.objects.select_related(
        "project", "dataset", "methodology", "organization"
    ).defer("boundary", "project__boundary")
    if has_role(user, Role.REGISTRY_ADMIN):
        return runs
    if not user.is_authenticated:
        return runs.none()
    visible = Q(organization__memberships__user=user)
    if verification_body_of(user) is not None:
        visible |= Q(pk__in=reviewable_verifications(user=user).values("run_id"))
    return runs.filter(visible).distinct()


def get_run_for_user(*, user: User, pk: int) -> EstimationRun | None:
    return list_runs(user=user).defer(None).filter(pk=pk).first()


# Verification ------------------------------------------------------------------------


def verification_body_of(user: User) -> Organization | None:
    """The verification body a verifier acts for (the first, if several)."""
    if not has_role(user, Role.VERIFIER):
        return None
    return (
        Organization.objects.filter(
            memberships__user=user, kind=Organization.Kind.VERIFIER
        )
        .order_by("pk")
        .first()
    )


def is_verifier_conflicted(user: User, verification: Verification) -> bool:
    """The user submitted the run or acts for the organization that made it or
    owns the project: they may not verify it."""
    return (
        verification.submitted_by_id == user.pk
        or is_member(user, verification.run.organization)
        or is_member(user, verification.project.owner)
    )


def reviewable_verifications(*, user: User) -> QuerySet[Verification]:
    """What has been submitted to this verifier: verifications awaiting a
    decision that they may take (a submission is open to every verification
    body without a conflict of interest; the first to decide takes it), and
    those they or their verification body decided. None for anyone else."""
    if verification_body_of(user) is None:
        return Verification.objects.none()
    own = Q(submitted_by=user) | Q(run__organization__memberships__user=user)
    own |= Q(project__owner__memberships__user=user)
    conflicted = Verification.objects.filter(own).values("pk")
    awaiting = Q(status=Verification.Status.SUBMITTED) & ~Q(pk__in=conflicted)
    decided = Q(verifier=user) | Q(
        verification_body__memberships__user=user,
        verification_body__kind=Organization.Kind.VERIFIER,
    )
    return Verification.objects.filter(awaiting | decided)


def list_verifications(*, user: User) -> QuerySet[Verification]:
    """Verifications the user may see: all for registry admins; those of their
    organizations' runs, and for verifiers those submitted to them."""
    verifications = Verification.objects.select_related(
        "project",
        "run",
        "run__methodology",
        "submitted_by",
        "verifier",
        "verification_body",
        "batch",
    ).defer("project__boundary", "run__boundary")
    if has_role(user, Role.REGISTRY_ADMIN):
        return verifications
    if not user.is_authenticated:
        return verifications.none()
    visible = Q(run__organization__memberships__user=user)
    if verification_body_of(user) is not None:
        visible |= Q(pk__in=reviewable_verifications(user=user).values("pk"))
    return verifications.filter(visible).distinct()


def get_verification_for_user(*, user: User, pk: int) -> Verification | None:
    return list_verifications(user=user).defer(None).filter(pk=pk).first()


def list_verification_queue(*, user: User) -> QuerySet[Verification]:
    """Runs awaiting a decision that this verifier may take (none of their own
    organizations'), oldest first."""
    return (
        list_verifications(user=user)
        .filter(
            status=Verification.Status.SUBMITTED,
            pk__in=reviewable_verifications(user=user).values("pk"),
        )
        .order_by("submitted_at", "pk")
    )


def can_decide_verification(user: User, verification: Verification) -> bool:
    return (
        verification.status == Verification.Status.SUBMITTED
        and verification_body_of(user) is not None
        and not is_verifier_conflicted(user, verification)
    )


def can_issue(user: User, verification: Verification | None = None) -> bool:
    """Who may issue credits: registry admins; and, for a given verification,
    only once it is approved. The issuance service's permission step and the
    pages' issue button both ask this."""
    if not has_role(user, Role.REGISTRY_ADMIN):
        return False
    return verification is None or verification.status == Verification.Status.APPROVED


def can_submit_for(user: User, run: EstimationRun) -> bool:
    """Bureau staff of the organization that made the run."""
    return is_staff_of(user, run.organization)


def may_estimate_for(user: User, organization: Organization) -> bool:
    """Who may upload maps and create, retry or cancel runs for
    ``organization``: its bureau staff, or a registry admin."""
    return is_staff_of(user, organization) or has_role(user, Role.REGISTRY_ADMIN)


def can_retry(user: User, run: EstimationRun) -> bool:
    """A failed run may be retried by whoever may create a run for its
    organization: its bureau staff, or a registry admin."""
    return run.status == EstimationRun.Status.FAILED and may_estimate_for(
        user, run.organization
    )


def can_cancel(user: User, run: EstimationRun) -> bool:
    """A queued or running run may be cancelled by whoever may create a run for
    its organization: its bureau staff, or a registry admin."""
    return run.status in EstimationRun.ACTIVE_STATUSES and may_estimate_for(
        user, run.organization
    )


def list_resubmittable_runs(*, verification: Verification) -> QuerySet[EstimationRun]:
    """Finished runs of the rejected verification's project, newest first: the
    revised run (or the same one, once what the verifier asked for is done)."""
    return (
        EstimationRun.objects.filter(
            project_id=verification.project_id,
            status=EstimationRun.Status.SUCCEEDED,
        )
        .exclude(
            verifications__status__in=[
                Verification.Status.SUBMITTED,
                Verification.Status.APPROVED,
                Verification.Status.ISSUED,
            ]
        )
        .select_related("methodology", "dataset")
        .defer("boundary")
        .order_by("-created_at", "-pk")
    )


def issuance_for(
    verification: Verification, buffer_share: Decimal
) -> calculations.Issuance:
    """What issuing the verification creates at ``buffer_share``; raises
    ``calculations.CalculationError`` if the arithmetic refuses the inputs."""
    run = verification.run
    return calculations.issuance_quantities(
        period_t_co2e=run.total_t_co2e_period,
        estimate_years=run.years,
        monitoring_years=calculations.period_years(
            verification.monitoring_start, verification.monitoring_end
        ),
        uncertainty_deduction=run.methodology.uncertainty_deduction,
        buffer_share=buffer_share,
    )


def preview_issuance(
    verification: Verification, *, buffer_share=None
) -> calculations.Issuance | None:
    """What issuing the verification would create, at the methodology's buffer
    share unless another is given; None if the arithmetic refuses the inputs."""
    if buffer_share is None:
        buffer_share = verification.run.methodology.buffer_share
    try:
        return issuance_for(verification, buffer_share)
    except calculations.CalculationError:
        return None


def list_class_schemes() -> QuerySet[ClassScheme]:
    return ClassScheme.objects.prefetch_related("mappings").order_by("slug")


def get_open_verification(*, run: EstimationRun) -> Verification | None:
    """The run's verification that is not rejected (a run has at most one):
    the one its issuance rests on."""
    return (
        run.verifications.filter(status__in=Verification.OPEN_STATUSES)
        .order_by("-pk")
        .first()
    )


# Input fingerprints ------------------------------------------------------------------


def landcover_inputs(
    *, sha256: str, kind: str, class_field: str, scheme: ClassScheme
) -> fingerprints.LandCoverInputs:
    """A land-cover map's part of a fingerprint: a stored dataset's, or a file
    the command line was given."""
    return fingerprints.LandCoverInputs(
        sha256=sha256,
        kind=kind,
        class_field=class_field,
        scheme=scheme.slug,
        mapping=scheme_lookup(scheme),
        nodata_codes=list(scheme.nodata_codes),
    )


def dataset_inputs(
    dataset: LandCoverDataset | None,
) -> fingerprints.LandCoverInputs | None:
    """A stored dataset's part of a fingerprint, with the file's SHA-256 as
    recorded at upload (the file is not read)."""
    if dataset is None:
        return None
    return landcover_inputs(
        sha256=dataset.sha256,
        kind=dataset.kind,
        class_field=dataset.class_field,
        scheme=dataset.scheme,
    )


def methodology_inputs(methodology: Methodology) -> fingerprints.MethodologyInputs:
    return fingerprints.MethodologyInputs(
        slug=methodology.slug,
        version=methodology.version,
        kind=methodology.kind,
        coefficients=[
            fingerprints.CoefficientInputs(
                ecosystem=c.ecosystem,
                pool=c.pool,
                value=c.value,
                unit=c.unit,
                basis=c.basis,
                sign=c.sign,
            )
            for c in methodology.coefficients.order_by("ecosystem", "pool")
        ],
    )


def current_fingerprint(run: EstimationRun) -> str:
    """The fingerprint of the run's inputs as they are now: the project's
    current boundary, the land-cover files (by the SHA-256 recorded at
    upload), the class mappings and the methodology's coefficients. Equal to
    ``run.fingerprint`` while nothing the numbers rest on has changed. Reads
    no file, so pages may show it; issuance re-hashes the files itself
    (``estimation.services.issuance``). The engine version is the run's own:
    a newer engine does not change what was computed and verified."""
    run = (
        EstimationRun.objects.select_related(
            "project", "dataset__scheme", "baseline_dataset__scheme", "methodology"
        )
        .defer(None)
        .get(pk=run.pk)
    )
    boundary = run.project.boundary if run.project_id else run.boundary
    inputs = fingerprints.estimate_inputs(
        boundary_wkb=bytes(boundary.wkb),
        landcover=dataset_inputs(run.dataset),
        baseline=dataset_inputs(run.baseline_dataset),
        methodology=methodology_inputs(run.methodology),
        period=(run.period_start, run.period_end),
        price=run.price_cny_per_t_co2e,
        engine=run.inputs.get("engine", fingerprints.ENGINE_VERSION),
    )
    return fingerprints.fingerprint(inputs)
