"""Verification and issuance: a verified estimate becomes a credit batch."""

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from estimation.calculations import period_years
from estimation.models import ClassMapping, EstimationRun, Verification
from estimation.services.issuance import issue_verification
from estimation.services.verification import (
    approve_verification,
    reject_verification,
    submit_for_verification,
)
from registry import services as registry_services
from registry.models import Account, Organization, ProjectEvent
from registry.roles import Role
from tests.registry.factories import OrganizationFactory
from tests.registry.projects import make_project
from trading import services as trading_services
from trading.models import CreditBatch, LedgerEntry

pytestmark = pytest.mark.django_db


def floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_DOWN))


@pytest.fixture
def submit(staff, verified_run):
    def make(**overrides):
        arguments = {"actor": staff, "run": verified_run}
        arguments.update(overrides)
        return submit_for_verification(**arguments)

    return make


@pytest.fixture
def approved(submit, verifier):
    verification = submit()
    return approve_verification(
        actor=verifier, verification=verification, reasons="Checked the map."
    )


def codes(error: ValidationError) -> list[str]:
    """The codes of a refusal, whether on a field or on the whole form."""
    if hasattr(error, "error_dict"):
        return [e.code for errors in error.error_dict.values() for e in errors]
    return [e.code for e in error.error_list]


def nothing_issued():
    return not CreditBatch.objects.exists() and not LedgerEntry.objects.exists()


# The workflow ------------------------------------------------------------------------


def test_submit_approve_issue_creates_one_batch_net_of_uncertainty_and_buffer(
    submit, staff, verifier, registry_admin, verified_run, registered_project, owner
):
    verification = submit(note="First monitoring period.")
    assert verification.status == Verification.Status.SUBMITTED
    assert (verification.monitoring_start, verification.monitoring_end) == (
        verified_run.period_start,
        verified_run.period_end,
    )

    approve_verification(actor=verifier, verification=verification)
    verification.refresh_from_db()
    assert verification.status == Verification.Status.APPROVED
    assert verification.verifier == verifier
    assert verification.verification_body.kind == Organization.Kind.VERIFIER
    assert verification.fingerprint == verified_run.fingerprint

    verification = issue_verification(actor=registry_admin, verification=verification)
    batch = verification.batch
    methodology = verified_run.methodology
    # Default methodology: 10 % uncertainty deduction, 10 % buffer share.
    quantity = floor(
        verified_run.total_t_co2e_period * (1 - methodology.uncertainty_deduction)
    )
    buffer = floor(quantity * methodology.buffer_share)
    assert quantity > 0 and buffer > 0
    assert (batch.quantity, batch.buffer_quantity) == (quantity, buffer)
    assert batch.project == registered_project
    assert batch.vintage == 2025
    assert (batch.monitoring_start, batch.monitoring_end) == (
        date(2021, 1, 1),
        date(2025, 12, 31),
    )
    assert batch.source == (
        f"estimation-run:{verified_run.pk} verification:{verification.pk}"
    )
    blocks = {block.account.kind: block for block in batch.blocks.all()}
    assert blocks[Account.Kind.HOLDING].account == owner.accounts.get(kind="holding")
    assert blocks[Account.Kind.HOLDING].quantity == quantity - buffer
    assert blocks[Account.Kind.BUFFER_POOL].quantity == buffer
    assert {entry.kind for entry in LedgerEntry.objects.filter(batch=batch)} == {
        LedgerEntry.Kind.ISSUE,
        LedgerEntry.Kind.BUFFER,
    }
    assert verification.status == Verification.Status.ISSUED
    assert verification.buffer_share == methodology.buffer_share
    assert verification.uncertainty_deduction == methodology.uncertainty_deduction
    assert verification.issued_by == registry_admin

    events = list(registered_project.events.values_list("kind", "actor"))
    assert events == [
        (ProjectEvent.Kind.VERIFICATION_SUBMITTED, staff.pk),
        (ProjectEvent.Kind.VERIFICATION_APPROVED, verifier.pk),
        (ProjectEvent.Kind.CREDITS_ISSUED, registry_admin.pk),
    ]
    assert batch.serial_label in registered_project.events.last().reference


def test_a_shorter_monitoring_period_gets_its_share_of_the_estimate(
    submit, verifier, registry_admin, verified_run
):
    verification = submit(
        monitoring_start=date(2021, 1, 1), monitoring_end=date(2022, 12, 31)
    )
    approve_verification(actor=verifier, verification=verification)
    batch = issue_verification(actor=registry_admin, verification=verification).batch
    gross = verified_run.total_t_co2e_period * Decimal(2) / verified_run.years
    quantity = floor(gross * Decimal("0.9"))
    assert batch.quantity == quantity
    assert batch.buffer_quantity == floor(quantity * Decimal("0.1"))
    assert batch.vintage == 2022


def test_consecutive_monitoring_periods_are_issued_separately(
    submit, verifier, registry_admin, verified_run, staff, registered_project
):
    first = submit(monitoring_start=date(2021, 1, 1), monitoring_end=date(2022, 12, 31))
    approve_verification(actor=verifier, verification=first)
    issue_verification(actor=registry_admin, verification=first)
    second_run = EstimationRun.objects.get(pk=verified_run.pk)
    second_run.pk = None  # a second, identical run of the same project
    second_run.save()
    second = submit_for_verification(
        actor=staff,
        run=second_run,
        monitoring_start=date(2023, 1, 1),
        monitoring_end=date(2025, 12, 31),
    )
    approve_verification(actor=verifier, verification=second)
    issue_verification(actor=registry_admin, verification=second)
    assert registered_project.batches.count() == 2
    total = sum(registered_project.batches.values_list("quantity", flat=True))
    # Two roundings down never add up to more than one over the whole period.
    whole = floor(verified_run.total_t_co2e_period * Decimal("0.9"))
    assert whole - 2 < total <= whole


def test_rejected_then_revised_and_resubmitted(submit, staff, verifier, verified_run):
    rejected = submit()
    reject_verification(
        actor=verifier,
        verification=rejected,
        reasons="The land-cover map is 5 km: use a 30 m map.",
    )
    rejected.refresh_from_db()
    assert rejected.status == Verification.Status.REJECTED
    assert rejected.reasons.startswith("The land-cover map")

    revised = submit_for_verification(
        actor=staff, run=verified_run, note="Tenure proofs added.", revises=rejected
    )
    assert revised.revises == rejected
    assert revised.status == Verification.Status.SUBMITTED
    kinds = list(verified_run.project.events.values_list("kind", flat=True))
    assert kinds == [
        ProjectEvent.Kind.VERIFICATION_SUBMITTED,
        ProjectEvent.Kind.VERIFICATION_REJECTED,
        ProjectEvent.Kind.VERIFICATION_SUBMITTED,
    ]
    assert verified_run.project.events.get(
        kind=ProjectEvent.Kind.VERIFICATION_REJECTED
    ).note.startswith("The land-cover map")


def test_only_a_rejected_verification_of_the_project_can_be_revised(
    submit, staff, verified_run
):
    open_one = submit(monitoring_end=date(2022, 12, 31))
    other_run = EstimationRun.objects.get(pk=verified_run.pk)
    other_run.pk = None
    other_run.save()
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(
            actor=staff,
            run=other_run,
            monitoring_start=date(2023, 1, 1),
            monitoring_end=date(2023, 12, 31),
            revises=open_one,
        )
    assert raised.value.code == "revises"


# Buffer share ----------------------------------------------------------------------


def test_buffer_share_overridden_with_a_reason(approved, registry_admin):
    verification = issue_verification(
        actor=registry_admin,
        verification=approved,
        buffer_share=Decimal("0.25"),
        buffer_share_reason="Fire risk assessed high for this stand.",
    )
    batch = verification.batch
    assert batch.buffer_quantity == floor(batch.quantity * Decimal("0.25"))
    assert verification.buffer_share == Decimal("0.25")
    assert verification.buffer_share_reason.startswith("Fire risk")


def test_a_zero_buffer_share_withholds_nothing(approved, registry_admin):
    batch = issue_verification(
        actor=registry_admin,
        verification=approved,
        buffer_share=Decimal("0"),
        buffer_share_reason="Covered by an insurance policy.",
    ).batch
    assert batch.buffer_quantity == 0
    assert not batch.blocks.filter(account__kind=Account.Kind.BUFFER_POOL).exists()


def test_another_buffer_share_needs_a_reason(approved, registry_admin):
    with pytest.raises(ValidationError) as raised:
        issue_verification(
            actor=registry_admin, verification=approved, buffer_share=Decimal("0.2")
        )
    assert "buffer_share_reason" in raised.value.error_dict
    assert nothing_issued()


@pytest.mark.parametrize("share", ["1", "1.5", "-0.01", "abc", 0.1, "0.12345"])
def test_a_buffer_share_outside_0_to_100_percent_is_refused(
    approved, registry_admin, share
):
    with pytest.raises(ValidationError) as raised:
        issue_verification(
            actor=registry_admin,
            verification=approved,
            buffer_share=share,
            buffer_share_reason="Trying.",
        )
    assert raised.value.error_dict["buffer_share"][0].code == "buffer_share"
    assert nothing_issued()
    approved.refresh_from_db()
    assert approved.status == Verification.Status.APPROVED


# Refusals at issuance --------------------------------------------------------------


def test_an_unverified_run_is_not_issued(submit, registry_admin):
    verification = submit()
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=verification)
    assert raised.value.code == "not_approved_submitted"
    assert nothing_issued()


def test_a_rejected_run_is_not_issued(submit, verifier, registry_admin):
    verification = submit()
    reject_verification(actor=verifier, verification=verification, reasons="Wrong map.")
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=verification)
    assert raised.value.code == "not_approved_rejected"
    assert nothing_issued()


def test_a_run_is_issued_once(approved, registry_admin, staff, verified_run):
    issue_verification(actor=registry_admin, verification=approved)
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "not_approved_issued"
    assert CreditBatch.objects.count() == 1
    # Nor can the issued run be submitted again, for any period.
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(
            actor=staff,
            run=verified_run,
            monitoring_start=date(2025, 1, 1),
            monitoring_end=date(2025, 12, 31),
        )
    assert raised.value.code == "already_submitted"


def test_the_database_allows_one_open_verification_per_run(approved, staff):
    with pytest.raises(IntegrityError), transaction.atomic():
        Verification.objects.create(
            run=approved.run,
            project=approved.project,
            monitoring_start=date(2021, 1, 1),
            monitoring_end=date(2021, 12, 31),
            submitted_by=staff,
        )


def test_an_overlapping_monitoring_period_is_not_issued_twice(
    approved, registry_admin, registered_project, owner
):
    # Credits for 2025 issued by other means (e.g. before this registry kept runs).
    trading_services.issue_batch(
        actor=registry_admin,
        project=registered_project,
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=10,
        buffer_quantity=1,
        holder_account=owner.accounts.get(kind="holding"),
    )
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    # Trading's refusal, passed through as it is: the rule has one home.
    assert codes(raised.value) == ["period_issued"]
    assert "2025-01-01 – 2025-12-31" in raised.value.messages[0]
    assert CreditBatch.objects.count() == 1
    approved.refresh_from_db()
    assert approved.status == Verification.Status.APPROVED


def test_an_overlapping_period_is_refused_at_submission(
    submit, verifier, registry_admin, verified_run, staff
):
    first = submit(monitoring_start=date(2021, 1, 1), monitoring_end=date(2023, 6, 30))
    other_run = EstimationRun.objects.get(pk=verified_run.pk)
    other_run.pk = None
    other_run.save()
    with pytest.raises(ValidationError) as raised:  # still open
        submit_for_verification(
            actor=staff,
            run=other_run,
            monitoring_start=date(2023, 1, 1),
            monitoring_end=date(2025, 12, 31),
        )
    assert raised.value.code == "period_overlap"
    approve_verification(actor=verifier, verification=first)
    issue_verification(actor=registry_admin, verification=first)
    with pytest.raises(ValidationError) as raised:  # now issued
        submit_for_verification(
            actor=staff,
            run=other_run,
            monitoring_start=date(2023, 6, 30),
            monitoring_end=date(2025, 12, 31),
        )
    assert raised.value.code == "period_overlap"
    assert Verification.objects.count() == 1


def test_changed_inputs_after_verification_issue_nothing(
    approved, registry_admin, verified_run
):
    # An admin re-maps a class of the scheme the run used.
    ClassMapping.objects.filter(scheme=verified_run.dataset.scheme, code="12").update(
        ecosystem="grassland"
    )
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "fingerprint"
    assert nothing_issued()


def test_a_changed_land_cover_file_is_caught(approved, registry_admin, verified_run):
    dataset = verified_run.dataset
    with dataset.file.storage.open(dataset.file.name, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "fingerprint"
    assert nothing_issued()


def test_changed_inputs_before_approval_are_refused(submit, verifier, verified_run):
    verification = submit()
    ClassMapping.objects.filter(scheme=verified_run.dataset.scheme, code="2").update(
        ecosystem="farmland"
    )
    with pytest.raises(ValidationError) as raised:
        approve_verification(actor=verifier, verification=verification)
    assert raised.value.code == "fingerprint"
    verification.refresh_from_db()
    assert verification.status == Verification.Status.SUBMITTED


def test_issuance_rechecks_the_boundary_against_other_live_projects(
    approved, registry_admin, make_user, settings, registered_project
):
    # A neighbour registered while sharing less than the tolerance; the
    # tolerance is then tightened: the overlap now counts.
    neighbour_org = OrganizationFactory()
    neighbour_staff = make_user(role=Role.BUREAU_STAFF, organization=neighbour_org)
    _west, south, east, north = registered_project.boundary.extent

    sliver = MultiPolygon(
        Polygon(
            (
                (east - 0.00001, south),
                (east + 0.005, south),
                (east + 0.005, north),
                (east - 0.00001, north),
                (east - 0.00001, south),
            )
        ),
        srid=4326,
    )
    neighbour = make_project(
        actor=neighbour_staff, owner=neighbour_org, geometry=sliver
    )
    registry_services.submit_project(actor=neighbour_staff, project=neighbour)
    settings.REGISTRY_OVERLAP_TOLERANCE_HA = "0"
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "overlap"
    assert neighbour.code in raised.value.message
    assert nothing_issued()


def test_a_suspended_project_is_not_issued(approved, registry_admin):
    registry_services.suspend_project(
        actor=registry_admin, project=approved.project, reason="Fire."
    )
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "project_state"
    assert nothing_issued()


def test_only_registry_admins_issue(approved, staff, verifier):
    for actor in (staff, verifier):
        with pytest.raises(PermissionDenied):
            issue_verification(actor=actor, verification=approved)
    assert nothing_issued()


# Independence of the verifier ------------------------------------------------------


def test_a_verifier_of_the_owner_organization_may_not_verify(
    submit, make_user, owner, verification_body
):
    verification = submit()
    insider = make_user(role=Role.VERIFIER, organization=verification_body)
    registry_services.add_member(user=insider, organization=owner)
    for decide in (approve_verification, reject_verification):
        with pytest.raises(PermissionDenied):
            decide(actor=insider, verification=verification, reasons="Looks fine.")
    verification.refresh_from_db()
    assert verification.status == Verification.Status.SUBMITTED
    assert verification.verifier is None


def test_the_submitter_may_not_verify_even_with_the_verifier_role(
    submit, staff, verification_body
):
    verification = submit()
    registry_services.grant_role(user=staff, role=Role.VERIFIER)
    registry_services.add_member(user=staff, organization=verification_body)
    with pytest.raises(PermissionDenied):
        approve_verification(actor=staff, verification=verification)


def test_only_verifiers_of_a_verification_body_decide(
    submit, make_user, registry_admin
):
    verification = submit()
    outsider = make_user(role=Role.VERIFIER)  # acts for a project owner
    for actor in (outsider, registry_admin):
        with pytest.raises(PermissionDenied):
            approve_verification(actor=actor, verification=verification)


def test_a_rejection_needs_reasons(submit, verifier):
    verification = submit()
    with pytest.raises(ValidationError) as raised:
        reject_verification(actor=verifier, verification=verification, reasons="  ")
    assert "reasons" in raised.value.error_dict


def test_a_decision_is_taken_once(submit, verifier, make_user, verification_body):
    verification = submit()
    approve_verification(actor=verifier, verification=verification)
    colleague = make_user(role=Role.VERIFIER, organization=verification_body)
    with pytest.raises(ValidationError) as raised:
        reject_verification(
            actor=colleague, verification=verification, reasons="Changed my mind."
        )
    assert raised.value.code == "not_submitted"


# Refusals at submission ------------------------------------------------------------


def test_only_staff_of_the_owner_submit(verified_run, make_user, verifier):
    other_staff = make_user(role=Role.BUREAU_STAFF)
    for actor in (other_staff, verifier):
        with pytest.raises(PermissionDenied):
            submit_for_verification(actor=actor, run=verified_run)
    assert not Verification.objects.exists()


def test_a_draft_projects_run_is_not_submitted(run_for, staff):
    run = run_for()  # the project is still a draft
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(actor=staff, run=run)
    assert raised.value.code == "project_state"


def test_an_unfinished_run_is_not_submitted(verified_run, staff):
    EstimationRun.objects.filter(pk=verified_run.pk).update(
        status=EstimationRun.Status.FAILED
    )
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(actor=staff, run=verified_run)
    assert raised.value.code == "run_state"


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (date(2020, 1, 1), date(2021, 12, 31), "period_outside_run"),
        (date(2024, 1, 1), date(2026, 6, 30), "period_outside_run"),
        (date(2023, 1, 1), date(2022, 12, 31), "period"),
    ],
)
def test_a_period_outside_the_run_is_refused(submit, start, end, code):
    with pytest.raises(ValidationError) as raised:
        submit(monitoring_start=start, monitoring_end=end)
    assert code in codes(raised.value)
    assert not Verification.objects.exists()


def test_a_period_that_has_not_ended_is_refused(registered_project, run_for, staff):
    today = timezone.localdate()
    run = run_for(period_start=date(2021, 1, 1), period_end=today + timedelta(days=30))
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(actor=staff, run=run)
    assert raised.value.error_dict["monitoring_end"][0].code == "period_not_over"


def test_a_period_outside_the_crediting_period_is_refused(
    registered_project, run_for, staff
):
    run = run_for(period_start=date(2019, 1, 1), period_end=date(2020, 12, 31))
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(actor=staff, run=run)
    assert raised.value.code == "period_outside_crediting"


def test_an_estimate_below_one_tonne_is_not_submitted(
    registered_project, run_for, staff
):
    # One day of a 500 m parcel's sink is well below a tonne after deduction.
    run = run_for(period_start=date(2021, 1, 1), period_end=date(2021, 1, 1))
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert period_years(run.period_start, run.period_end) < Decimal("0.01")
    with pytest.raises(ValidationError) as raised:
        submit_for_verification(actor=staff, run=run)
    assert raised.value.code == "nothing_to_issue"


def test_a_run_is_submitted_once_at_a_time(submit):
    submit(monitoring_end=date(2022, 12, 31))
    with pytest.raises(ValidationError) as raised:
        submit(monitoring_start=date(2023, 1, 1))
    assert raised.value.code == "already_submitted"
