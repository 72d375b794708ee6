from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from registry import services
from registry.models import Account, AdministrativeDivision, Organization, Project
from registry.roles import Role
from registry.selectors import find_project_overlaps, list_projects
from tests.registry.factories import OrganizationFactory
from tests.registry.projects import DAFANG, make_project, offset_lon, square

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return OrganizationFactory(name_en="Owner collective")


@pytest.fixture
def staff(make_user, owner):
    return make_user(role=Role.BUREAU_STAFF, organization=owner)


@pytest.fixture
def admin(make_user):
    return make_user(role=Role.REGISTRY_ADMIN)


def test_divisions_are_bijie_and_its_eight_counties():
    counties = AdministrativeDivision.objects.filter(level="county")
    assert counties.count() == 8
    assert AdministrativeDivision.objects.get(level="city").name_zh == "毕节市"
    assert set(counties.values_list("adcode", flat=True)) == {
        "520502",
        "520521",
        "520523",
        "520524",
        "520525",
        "520526",
        "520527",
        "520581",
    }


def test_every_organization_gets_a_holding_account_with_a_public_number():
    organization = services.create_organization(
        name_zh="买方",
        name_en="Buyer",
        kind=Organization.Kind.BUYER,
        uscc="914403001922038216",
    )
    account = organization.accounts.get()
    assert account.kind == Account.Kind.HOLDING
    assert account.number == f"BJ-H-{account.pk:06d}"
    assert not account.is_public


def test_the_registry_operator_gets_the_registry_accounts_once():
    operator = services.create_organization(
        name_zh="登记中心",
        name_en="Registry",
        kind=Organization.Kind.REGISTRY_OPERATOR,
        uscc="914403001922038216",
    )
    kinds = set(operator.accounts.values_list("kind", flat=True))
    assert kinds == {"holding", "buffer_pool", "retirement", "cancellation"}
    with pytest.raises(ValidationError):
        services.open_account(
            organization=OrganizationFactory(), kind=Account.Kind.BUFFER_POOL
        )


def test_create_project_stores_boundary_area_code_and_history(staff, owner):
    project = make_project(actor=staff, owner=owner)
    assert project.status == Project.Status.DRAFT
    assert project.code == f"BJ-520521-{project.pk:05d}"
    assert project.area_ha == pytest.approx(100, rel=1e-3)
    assert project.boundary.srid == 4326
    change = project.status_changes.get()
    assert (change.from_status, change.to_status, change.actor) == ("", "draft", staff)


def test_create_project_refuses_a_boundary_outside_the_county(staff, owner):
    with pytest.raises(ValidationError) as raised:
        make_project(actor=staff, owner=owner, county="520581")  # Qianxi
    assert "boundary" in raised.value.message_dict
    assert not Project.objects.exists()


def test_create_project_refuses_a_reversed_crediting_period(staff, owner):
    with pytest.raises(ValidationError):
        make_project(
            actor=staff,
            owner=owner,
            crediting_start=date(2030, 1, 1),
            crediting_end=date(2021, 1, 1),
        )
    assert not Project.objects.exists()


def test_only_bureau_staff_of_the_owner_can_register_its_projects(make_user, owner):
    outsider = make_user(role=Role.BUREAU_STAFF)
    buyer = make_user(role=Role.BUYER, organization=owner)
    for actor in (outsider, buyer):
        with pytest.raises(PermissionDenied):
            make_project(actor=actor, owner=owner)
    assert not Project.objects.exists()


def test_staff_of_another_organization_cannot_edit_or_submit(make_user, staff, owner):
    project = make_project(actor=staff, owner=owner)
    other = make_user(role=Role.BUREAU_STAFF)
    with pytest.raises(PermissionDenied):
        services.submit_project(actor=other, project=project)
    with pytest.raises(PermissionDenied):
        services.update_project(
            actor=other,
            project=project,
            details=services.ProjectDetails(
                name_zh="改",
                name_en="Changed",
                owner=owner,
                county=project.county,
                crediting_start=project.crediting_start,
                crediting_end=project.crediting_end,
                ecosystem_focus="forest",
            ),
        )
    project.refresh_from_db()
    assert project.status == Project.Status.DRAFT
    assert project.name_en == "Test project"


def test_full_lifecycle_records_who_when_and_why(staff, owner, admin):
    project = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=project)
    services.return_project(actor=admin, project=project, reason="补充林权证明")
    services.submit_project(actor=staff, project=project)
    services.approve_project(actor=admin, project=project)
    services.suspend_project(actor=admin, project=project, reason="Overdue report")
    services.reinstate_project(actor=admin, project=project, reason="Report received")
    services.close_project(actor=admin, project=project, reason="Crediting ended")
    project.refresh_from_db()
    assert project.status == Project.Status.CLOSED
    history = list(
        project.status_changes.values_list("from_status", "to_status", "reason")
    )
    assert history == [
        ("", "draft", ""),
        ("draft", "submitted", ""),
        ("submitted", "draft", "补充林权证明"),
        ("draft", "submitted", ""),
        ("submitted", "registered", ""),
        ("registered", "suspended", "Overdue report"),
        ("suspended", "registered", "Report received"),
        ("registered", "closed", "Crediting ended"),
    ]


def test_returning_suspending_and_closing_need_a_reason(staff, owner, admin):
    project = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=project)
    with pytest.raises(ValidationError) as raised:
        services.return_project(actor=admin, project=project, reason="  ")
    assert "reason" in raised.value.message_dict
    project.refresh_from_db()
    assert project.status == Project.Status.SUBMITTED


def test_only_registry_admins_approve(staff, owner, make_user):
    project = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=project)
    for actor in (staff, make_user(role=Role.VERIFIER)):
        with pytest.raises(PermissionDenied):
            services.approve_project(actor=actor, project=project)
    project.refresh_from_db()
    assert project.status == Project.Status.SUBMITTED


def test_a_step_from_the_wrong_state_is_refused(staff, owner, admin):
    project = make_project(actor=staff, owner=owner)
    with pytest.raises(ValidationError, match="Draft"):
        services.approve_project(actor=admin, project=project)
    services.submit_project(actor=staff, project=project)
    with pytest.raises(ValidationError):
        services.close_project(actor=admin, project=project, reason="x")


class TestDoubleCounting:
    @pytest.fixture
    def registered(self, staff, owner, admin):
        project = make_project(actor=staff, owner=owner, name="已登记")
        services.submit_project(actor=staff, project=project)
        return services.approve_project(actor=admin, project=project)

    def test_submitting_an_overlapping_project_is_refused_naming_the_other(
        self, staff, owner, registered
    ):
        lon, lat = DAFANG
        # Shifted 500 m east: half of the 100 ha square, 50 ha, is shared.
        newcomer = make_project(
            actor=staff,
            owner=owner,
            geometry=square(lon + offset_lon(lat, 500), lat, 1000),
        )
        with translation.override("en"), pytest.raises(services.OverlapError) as raised:
            services.submit_project(actor=staff, project=newcomer)
        message = raised.value.message
        assert registered.code in message
        assert "50.0" in message
        (overlap,) = raised.value.overlaps
        assert overlap.project == registered
        assert overlap.area_ha == pytest.approx(50, rel=1e-3)
        newcomer.refresh_from_db()
        assert newcomer.status == Project.Status.DRAFT
        assert newcomer.status_changes.count() == 1

    def test_touching_boundaries_are_allowed(self, staff, owner, registered):
        _lon, lat = DAFANG
        neighbour_west = registered.boundary.extent[2]
        neighbour = make_project(
            actor=staff, owner=owner, geometry=square(neighbour_west, lat, 800)
        )
        assert services.submit_project(actor=staff, project=neighbour).status == (
            Project.Status.SUBMITTED
        )

    def test_an_overlap_up_to_the_tolerance_is_allowed(self, staff, owner, registered):
        _lon, lat = DAFANG
        east = registered.boundary.extent[2]
        # A 30 m wide sliver of 1000 m: 3 ha would be refused, 0.09 ha (0.9 m) not.
        sliver = make_project(
            actor=staff,
            owner=owner,
            geometry=square(east - offset_lon(lat, 0.9), lat, 1000),
        )
        services.submit_project(actor=staff, project=sliver)
        refused = make_project(
            actor=staff,
            owner=owner,
            geometry=square(east - offset_lon(lat, 30), lat, 1000),
        )
        with pytest.raises(services.OverlapError):
            services.submit_project(actor=staff, project=refused)

    def test_drafts_and_closed_projects_do_not_block(
        self, staff, owner, admin, registered
    ):
        services.close_project(actor=admin, project=registered, reason="ended")
        other_draft = make_project(actor=staff, owner=owner)
        newcomer = make_project(actor=staff, owner=owner)
        services.submit_project(actor=staff, project=newcomer)
        assert (
            find_project_overlaps(
                boundary=other_draft.boundary, exclude_pk=other_draft.pk
            )[0].project
            == newcomer
        )

    def test_approval_rechecks(self, staff, owner, admin, registered):
        # Two submissions cannot both pass; a registered project reinstated later
        # is checked again too.
        services.suspend_project(actor=admin, project=registered, reason="audit")
        newcomer = make_project(actor=staff, owner=owner)
        services.submit_project(actor=staff, project=newcomer)
        with pytest.raises(services.OverlapError):
            services.reinstate_project(actor=admin, project=registered, reason="ok")
        registered.refresh_from_db()
        assert registered.status == Project.Status.SUSPENDED


def test_drafts_are_listed_only_for_their_owner_and_admins(
    make_user, staff, owner, admin
):
    draft = make_project(actor=staff, owner=owner)
    submitted = make_project(
        actor=staff, owner=owner, geometry=square(105.62, 27.16, 500)
    )
    services.submit_project(actor=staff, project=submitted)
    from django.contrib.auth.models import AnonymousUser

    assert set(list_projects(user=AnonymousUser())) == {submitted}
    assert set(list_projects(user=make_user(role=Role.BUREAU_STAFF))) == {submitted}
    assert set(list_projects(user=staff)) == {draft, submitted}
    assert set(list_projects(user=admin)) == {draft, submitted}
