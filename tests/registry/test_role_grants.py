"""Separation of duties: a registry admin cannot manage people alone.

First the attack of issue 13 replayed through /admin/ as a registry admin, each
step refused; then the role-grant flow that replaces it (one admin asks, another
decides) through the services and the pages.
"""

import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from registry import services
from registry.models import Membership, RoleGrant, User
from registry.roles import PEOPLE_PERMISSIONS, Role, role_permissions
from tests.registry.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def _roles(user) -> set[str]:
    return set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def _request(actor, **fields) -> RoleGrant:
    fields.setdefault("reason", "New colleague in the verification team.")
    return services.request_role_grant(actor=actor, **fields)


@pytest.fixture
def buyer(make_user):
    return make_user(role=Role.BUYER, username="buyer_person")


@pytest.fixture
def third_admin(make_user, operator):
    return make_user(role=Role.REGISTRY_ADMIN, organization=operator)


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


# The attack, step by step, through /admin/ ----------------------------------------


def test_a_registry_admin_cannot_add_a_user_in_the_admin(admin_client):
    url = reverse("admin:registry_user_add")
    before = User.objects.count()

    assert admin_client.get(url).status_code == 403
    response = admin_client.post(
        url,
        {
            "username": "sock_puppet",
            "password1": "a long new password 1",
            "password2": "a long new password 1",
            "usable_password": "true",
        },
    )

    assert response.status_code == 403
    assert User.objects.count() == before
    assert not User.objects.filter(username="sock_puppet").exists()


def test_a_registry_admin_sees_no_superuser_flag_groups_or_permissions(
    admin_client, admin
):
    response = admin_client.get(reverse("admin:registry_user_change", args=[admin.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert admin.username in body
    for field in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert f'name="{field}"' not in body
    assert "Superuser status" not in body
    assert "User permissions" not in body
    assert reverse("admin:auth_user_password_change", args=[admin.pk]) not in body


def test_a_registry_admin_cannot_tick_superuser_on_themselves(admin_client, admin):
    group = Group.objects.get(name=Role.REGISTRY_ADMIN)
    response = admin_client.post(
        reverse("admin:registry_user_change", args=[admin.pk]),
        {
            "username": admin.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [group.pk],
            "user_permissions": list(
                Permission.objects.values_list("pk", flat=True)[:5]
            ),
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 403
    admin.refresh_from_db()
    assert not admin.is_superuser
    assert not admin.user_permissions.exists()


def test_a_registry_admin_cannot_put_a_user_in_the_registry_admin_group(
    admin_client, buyer
):
    group = Group.objects.get(name=Role.REGISTRY_ADMIN)
    through_user = admin_client.post(
        reverse("admin:registry_user_change", args=[buyer.pk]),
        {
            "username": buyer.username,
            "is_active": "on",
            "is_staff": "on",
            "groups": [group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    through_group = admin_client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": group.name, "permissions": []},
    )
    new_group = admin_client.post(
        reverse("admin:auth_group_add"), {"name": "admins_too", "permissions": []}
    )

    assert through_user.status_code == 403
    assert through_group.status_code == 403
    assert new_group.status_code == 403
    assert _roles(buyer) == {Role.BUYER}
    assert not User.objects.get(pk=buyer.pk).is_staff
    assert group.permissions.count() > 0
    assert not Group.objects.filter(name="admins_too").exists()


def test_a_registry_admin_cannot_add_a_membership(admin_client, buyer, operator):
    before = Membership.objects.count()
    response = admin_client.post(
        reverse("admin:registry_membership_add"),
        {"user": buyer.pk, "organization": operator.pk},
    )

    assert response.status_code == 403
    assert Membership.objects.count() == before
    assert not Membership.objects.filter(user=buyer, organization=operator).exists()
    # The membership pages are there to read, with nothing to change.
    membership = Membership.objects.get(user=buyer)
    page = admin_client.get(
        reverse("admin:registry_membership_change", args=[membership.pk])
    )
    assert page.status_code == 200
    assert 'name="organization"' not in page.content.decode()
    delete = admin_client.post(
        reverse("admin:registry_membership_delete", args=[membership.pk]),
        {"post": "yes"},
    )
    assert delete.status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_a_registry_admin_cannot_change_another_staff_users_password(
    admin_client, second_admin
):
    url = reverse("admin:auth_user_password_change", args=[second_admin.pk])

    assert admin_client.get(url).status_code == 403
    response = admin_client.post(
        url,
        {
            "password1": "taken over 12345",
            "password2": "taken over 12345",
            "usable_password": "true",
            "set_password": "1",
        },
    )

    assert response.status_code == 403
    second_admin.refresh_from_db()
    assert second_admin.check_password(PASSWORD)
    assert not second_admin.check_password("taken over 12345")


def test_a_registry_admin_cannot_set_a_holders_password_either(admin_client, buyer):
    """Else they could sign in as a holder, request a transfer and approve it."""
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[buyer.pk]),
        {"password1": "taken over 12345", "password2": "taken over 12345"},
    )

    assert response.status_code == 403
    buyer.refresh_from_db()
    assert buyer.check_password(PASSWORD)


def test_people_stay_read_only_even_with_permissions_given_by_mistake(
    admin_client, admin, buyer, operator
):
    """Defence in depth: should an operator hand a registry admin the old
    permissions directly, the admin still refuses every change to people."""
    admin.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="registry",
            codename__in=[
                "add_user",
                "change_user",
                "add_membership",
                "change_membership",
                "delete_membership",
            ],
        )
    )

    assert admin_client.get(reverse("admin:registry_user_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:registry_user_change", args=[admin.pk]),
            {"username": admin.username, "is_superuser": "on", "is_staff": "on"},
        ).status_code
        == 403
    )
    assert (
        admin_client.post(
            reverse("admin:auth_user_password_change", args=[buyer.pk]),
            {"password1": "taken over 12345", "password2": "taken over 12345"},
        ).status_code
        == 403
    )
    assert (
        admin_client.post(
            reverse("admin:registry_membership_add"),
            {"user": buyer.pk, "organization": operator.pk},
        ).status_code
        == 403
    )
    admin.refresh_from_db()
    buyer.refresh_from_db()
    assert not admin.is_superuser
    assert buyer.check_password(PASSWORD)
    assert not Membership.objects.filter(user=buyer, organization=operator).exists()


def test_role_grants_are_read_only_in_the_admin(admin_client, admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    listing = admin_client.get(reverse("admin:registry_rolegrant_changelist"))
    assert listing.status_code == 200
    assert "buyer_person" in listing.content.decode()

    page = admin_client.get(reverse("admin:registry_rolegrant_change", args=[grant.pk]))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    forged = admin_client.post(
        reverse("admin:registry_rolegrant_change", args=[grant.pk]),
        {"status": "approved", "reason": "x", "kind": grant.kind},
    )
    assert forged.status_code == 403
    assert admin_client.get(reverse("admin:registry_rolegrant_add")).status_code == 403
    # Not even the operator's superuser rewrites the record.
    admin_client.force_login(
        User.objects.create_superuser("operator_root", "root@example.cn", PASSWORD)
    )
    for url, data in (
        (reverse("admin:registry_rolegrant_change", args=[grant.pk]), {"x": "1"}),
        (reverse("admin:registry_rolegrant_delete", args=[grant.pk]), {"post": "yes"}),
        (reverse("admin:registry_rolegrant_add"), {"x": "1"}),
    ):
        assert admin_client.post(url, data).status_code == 403
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING


def test_a_superuser_keeps_djangos_user_admin(client, buyer):
    operator_user = User.objects.create_superuser(
        "operator_root", "root@example.cn", PASSWORD
    )
    client.force_login(operator_user)

    body = client.get(
        reverse("admin:registry_user_change", args=[buyer.pk])
    ).content.decode()

    assert 'name="is_superuser"' in body
    assert 'name="groups"' in body
    password_page = client.get(
        reverse("admin:auth_user_password_change", args=[buyer.pk])
    )
    assert password_page.status_code == 200


def test_no_role_holds_people_management_permissions():
    listed = {name for names in role_permissions().values() for name in names}
    assert not listed & set(PEOPLE_PERMISSIONS)

    held = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(
            group__name=Role.REGISTRY_ADMIN
        ).values_list("content_type__app_label", "codename")
    }
    assert not held & set(PEOPLE_PERMISSIONS)
    assert {
        "registry.view_user",
        "registry.view_membership",
        "registry.view_rolegrant",
    } <= held


def test_syncing_roles_never_grants_people_management(monkeypatch):
    leaky = role_permissions()
    leaky[Role.REGISTRY_ADMIN] = (*leaky[Role.REGISTRY_ADMIN], "registry.add_user")
    monkeypatch.setattr(services, "role_permissions", lambda: leaky)

    services.sync_role_groups()

    assert not Group.objects.get(name=Role.REGISTRY_ADMIN).permissions.filter(
        codename="add_user"
    )


def test_the_migration_takes_people_management_from_existing_groups():
    """A database migrated before role grants: its registry admin group still
    holds the old permissions until 0006 runs."""
    migration = importlib.import_module("registry.migrations.0006_role_grants")
    group = Group.objects.get(name=Role.REGISTRY_ADMIN)
    old = Permission.objects.filter(
        content_type__app_label="registry",
        codename__in=["add_user", "change_user", "add_membership", "delete_membership"],
    )
    group.permissions.add(*old)
    view_user = group.permissions.filter(codename="view_user").count()

    class SchemaEditor:
        pass

    editor = SchemaEditor()
    editor.connection = connection
    migration.take_people_management_from_registry_admins(django_apps, editor)

    assert not group.permissions.filter(pk__in=old).exists()
    assert group.permissions.filter(codename="view_user").count() == view_user == 1


# The grant flow: one asks, another decides ----------------------------------------


def test_a_second_admin_approves_a_role_grant_and_it_is_applied(
    admin, second_admin, buyer
):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    assert grant.status == RoleGrant.Status.PENDING
    assert _roles(buyer) == {Role.BUYER}  # nothing changes on asking

    before = timezone.now()
    services.approve_role_grant(grant=grant, approver=second_admin, note="Checked.")

    grant.refresh_from_db()
    assert _roles(buyer) == {Role.BUYER, Role.VERIFIER}
    assert grant.status == RoleGrant.Status.APPROVED
    assert grant.requested_by == admin
    assert grant.decided_by == second_admin
    assert grant.decided_at >= before
    assert grant.decision_note == "Checked."


def test_nobody_approves_their_own_request(admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    with pytest.raises(PermissionDenied, match="another registry admin"):
        services.approve_role_grant(grant=grant, approver=admin)
    with pytest.raises(PermissionDenied, match="another registry admin"):
        services.reject_role_grant(grant=grant, approver=admin, note="Withdrawn")

    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING
    assert grant.decided_by is None
    assert _roles(buyer) == {Role.BUYER}


def test_nobody_approves_a_change_about_themselves(admin, second_admin, third_admin):
    other = OrganizationFactory()
    grant = _request(
        admin,
        kind=RoleGrant.Kind.ADD_MEMBERSHIP,
        user=second_admin,
        organization=other,
    )

    with pytest.raises(PermissionDenied, match="about you"):
        services.approve_role_grant(grant=grant, approver=second_admin)
    assert not Membership.objects.filter(user=second_admin, organization=other)
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING

    services.approve_role_grant(grant=grant, approver=third_admin)
    assert Membership.objects.filter(user=second_admin, organization=other).exists()


def test_a_rejection_changes_nothing_but_the_grant(admin, second_admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    with pytest.raises(ValidationError) as missing_note:
        services.reject_role_grant(grant=grant, approver=second_admin, note="  ")
    assert "note" in missing_note.value.message_dict
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING

    services.reject_role_grant(
        grant=grant, approver=second_admin, note="Not a verifier."
    )

    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.REJECTED
    assert grant.decided_by == second_admin
    assert grant.decided_at is not None
    assert grant.decision_note == "Not a verifier."
    assert _roles(buyer) == {Role.BUYER}
    with pytest.raises(ValidationError, match="already rejected"):
        services.approve_role_grant(grant=grant, approver=second_admin)
    assert _roles(buyer) == {Role.BUYER}


def test_a_grant_is_decided_once(admin, second_admin, third_admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    services.approve_role_grant(grant=grant, approver=second_admin)

    with pytest.raises(ValidationError, match="already approved"):
        services.reject_role_grant(grant=grant, approver=third_admin, note="Too late")

    grant.refresh_from_db()
    assert grant.decided_by == second_admin
    assert grant.status == RoleGrant.Status.APPROVED


def test_of_two_deciders_at_once_only_one_wins(
    monkeypatch, admin, second_admin, third_admin, buyer
):
    """Both read the grant as pending (as if neither waited for the other's
    lock); the compare-and-set from pending lets only the first through."""
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    stale = RoleGrant.objects.get(pk=grant.pk)
    services.reject_role_grant(grant=grant, approver=second_admin, note="No.")
    monkeypatch.setattr(services, "_locked_pending_grant", lambda grant: stale)

    with pytest.raises(ValidationError, match="a moment ago"):
        services.approve_role_grant(grant=stale, approver=third_admin)

    grant.refresh_from_db()
    assert (grant.status, grant.decided_by) == ("rejected", second_admin)
    assert _roles(buyer) == {Role.BUYER}  # the approval's change rolled back


def test_the_same_change_cannot_wait_twice(admin, second_admin, buyer):
    first = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    with pytest.raises(ValidationError, match=f"#{first.pk}") as again:
        _request(
            second_admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier"
        )
    assert again.value.code == "role_grant_duplicate"
    with pytest.raises(ValidationError, match=f"#{first.pk}"):
        # The opposite change of the same role conflicts too.
        _request(admin, kind=RoleGrant.Kind.REVOKE_ROLE, user=buyer, role="verifier")
    assert RoleGrant.objects.count() == 1

    # Once decided, the change may be asked for again.
    services.reject_role_grant(grant=first, approver=second_admin, note="Later.")
    assert _request(
        admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier"
    ).pk


def test_a_twin_request_committed_after_the_check_is_refused_in_words(
    monkeypatch, admin, second_admin, buyer
):
    """Two admins ask at the same moment: both checks see no pending twin, the
    database's partial unique index stops the second, and the refusal still
    names the first."""
    first = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    real_lookup = services.find_pending_role_grant
    lookups = []

    def blind_first_time(grant):
        lookups.append(grant)
        return None if len(lookups) == 1 else real_lookup(grant)

    monkeypatch.setattr(services, "find_pending_role_grant", blind_first_time)

    with pytest.raises(ValidationError, match=f"#{first.pk}") as twin:
        _request(
            second_admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier"
        )

    assert twin.value.code == "role_grant_duplicate"
    assert len(lookups) == 2
    assert RoleGrant.objects.count() == 1


def test_the_database_refuses_a_second_pending_grant_for_the_same_change(admin, buyer):
    _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleGrant.objects.create(
            kind=RoleGrant.Kind.GRANT_ROLE,
            user=buyer,
            role="verifier",
            reason="race",
            requested_by=admin,
        )


def test_the_database_refuses_a_decision_by_the_requester_or_the_target(
    admin, second_admin, buyer
):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    for decider in (admin, buyer):
        with pytest.raises(IntegrityError), transaction.atomic():
            RoleGrant.objects.filter(pk=grant.pk).update(
                status=RoleGrant.Status.APPROVED,
                decided_by=decider,
                decided_at=timezone.now(),
            )
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING


@pytest.mark.parametrize("role", [Role.BUREAU_STAFF, Role.VERIFIER, Role.BUYER])
def test_only_registry_admins_ask_and_decide(make_user, admin, buyer, role):
    outsider = make_user(role=role)

    with pytest.raises(PermissionDenied, match="Only a registry admin"):
        _request(outsider, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    assert not RoleGrant.objects.exists()

    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    with pytest.raises(PermissionDenied, match="Only a registry admin"):
        services.approve_role_grant(grant=grant, approver=outsider)
    with pytest.raises(PermissionDenied, match="Only a registry admin"):
        services.reject_role_grant(grant=grant, approver=outsider, note="No")
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING
    assert _roles(buyer) == {Role.BUYER}


def test_a_superuser_may_decide_like_a_registry_admin(admin, buyer):
    operator_user = User.objects.create_superuser(
        "operator_root", "root@example.cn", PASSWORD
    )
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    services.approve_role_grant(grant=grant, approver=operator_user)

    assert Role.VERIFIER in _roles(buyer)


def test_a_request_needs_a_reason_and_the_kinds_details(admin, buyer):
    with pytest.raises(ValidationError) as no_reason:
        _request(
            admin,
            kind=RoleGrant.Kind.GRANT_ROLE,
            user=buyer,
            role="verifier",
            reason="   ",
        )
    assert no_reason.value.message_dict["reason"] == [
        "Give a reason: it is kept with the change for anyone who audits it."
    ]

    with pytest.raises(ValidationError) as no_role:
        _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer)
    assert "role" in no_role.value.message_dict

    with pytest.raises(ValidationError) as no_organization:
        _request(admin, kind=RoleGrant.Kind.ADD_MEMBERSHIP, user=buyer)
    assert "organization" in no_organization.value.message_dict

    with pytest.raises(ValidationError) as no_user:
        _request(admin, kind=RoleGrant.Kind.REVOKE_ROLE, role="buyer")
    assert "user" in no_user.value.message_dict

    with pytest.raises(ValidationError) as new_user_incomplete:
        _request(admin, kind=RoleGrant.Kind.CREATE_USER, role="buyer")
    assert {"username", "email", "organization"} <= set(
        new_user_incomplete.value.message_dict
    )

    with pytest.raises(ValidationError) as bad_username:
        _request(
            admin,
            kind=RoleGrant.Kind.CREATE_USER,
            username="has spaces!",
            email="x@example.cn",
            role="buyer",
            organization=OrganizationFactory(),
        )
    assert "username" in bad_username.value.message_dict

    with pytest.raises(ValidationError, match="Choose what to change"):
        _request(admin, kind="make_superuser", user=buyer)
    assert not RoleGrant.objects.exists()


def test_a_change_that_changes_nothing_is_refused(admin, second_admin, buyer):
    with pytest.raises(ValidationError, match="already has the role"):
        _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="buyer")
    with pytest.raises(ValidationError, match="does not have the role"):
        _request(admin, kind=RoleGrant.Kind.REVOKE_ROLE, user=buyer, role="verifier")
    organization = buyer.organizations.get()
    with pytest.raises(ValidationError, match="already acts for"):
        _request(
            admin,
            kind=RoleGrant.Kind.ADD_MEMBERSHIP,
            user=buyer,
            organization=organization,
        )
    with pytest.raises(ValidationError, match="is taken"):
        _request(
            admin,
            kind=RoleGrant.Kind.CREATE_USER,
            username="BUYER_PERSON",
            email="new@example.cn",
            role="buyer",
            organization=organization,
        )
    assert not RoleGrant.objects.exists()

    # Checked again on approval: the roles may have changed in between.
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    services.grant_role(user=buyer, role=Role.VERIFIER)
    with pytest.raises(ValidationError, match="already has the role"):
        services.approve_role_grant(grant=grant, approver=second_admin)
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING


def test_revoking_the_registry_admin_role_also_closes_the_admin(
    admin, second_admin, third_admin
):
    grant = _request(
        admin,
        kind=RoleGrant.Kind.REVOKE_ROLE,
        user=third_admin,
        role=Role.REGISTRY_ADMIN,
    )
    services.approve_role_grant(grant=grant, approver=second_admin)

    third_admin.refresh_from_db()
    assert Role.REGISTRY_ADMIN not in _roles(third_admin)
    assert not third_admin.is_staff


def test_removing_a_membership(admin, second_admin, buyer):
    organization = buyer.organizations.get()
    grant = _request(
        admin,
        kind=RoleGrant.Kind.REMOVE_MEMBERSHIP,
        user=buyer,
        organization=organization,
    )
    assert Membership.objects.filter(user=buyer, organization=organization).exists()

    services.approve_role_grant(grant=grant, approver=second_admin)

    assert not Membership.objects.filter(user=buyer, organization=organization)


def test_creating_a_user_waits_for_approval_and_sets_no_password(admin, second_admin):
    organization = OrganizationFactory()
    grant = _request(
        admin,
        kind=RoleGrant.Kind.CREATE_USER,
        username="new_verifier",
        first_name="敏",
        last_name="王",
        email="wang.min@example.cn",
        role=Role.VERIFIER,
        organization=organization,
    )
    assert grant.user is None
    assert not User.objects.filter(username="new_verifier").exists()

    services.approve_role_grant(grant=grant, approver=second_admin)

    grant.refresh_from_db()
    user = User.objects.get(username="new_verifier")
    assert grant.user == user
    assert (user.first_name, user.last_name, user.email) == (
        "敏",
        "王",
        "wang.min@example.cn",
    )
    assert not user.has_usable_password()
    assert _roles(user) == {Role.VERIFIER}
    assert list(user.organizations.all()) == [organization]
    assert not user.is_staff and not user.is_superuser


# Pages ------------------------------------------------------------------------------


def _page_urls(grant):
    return [
        reverse("registry:role-grant-queue"),
        reverse("registry:role-grant-create"),
        reverse("registry:role-grant-audit"),
    ]


@pytest.mark.parametrize("role", [Role.BUREAU_STAFF, Role.VERIFIER, Role.BUYER])
def test_the_pages_are_closed_to_everyone_but_registry_admins(
    client, make_user, admin, buyer, role
):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    client.force_login(make_user(role=role))

    for url in _page_urls(grant):
        assert client.get(url).status_code == 403
    response = client.post(
        reverse("registry:role-grant-decide", args=[grant.pk, "approve"])
    )
    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING
    assert "Roles and members" not in client.get("/").content.decode()


def test_the_pages_send_visitors_to_sign_in(client, admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    for url in _page_urls(grant):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_a_registry_admin_requests_a_change_on_the_page(admin_client, admin, buyer):
    response = admin_client.post(
        reverse("registry:role-grant-create"),
        {
            "kind": RoleGrant.Kind.GRANT_ROLE,
            "user": buyer.username,
            "role": Role.VERIFIER,
            "reason": "Joins the verification team.",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    grant = RoleGrant.objects.get()
    assert (grant.kind, grant.user, grant.role, grant.requested_by) == (
        RoleGrant.Kind.GRANT_ROLE,
        buyer,
        Role.VERIFIER,
        admin,
    )
    assert _roles(buyer) == {Role.BUYER}
    assert "Roles and members" in admin_client.get("/").content.decode()


def test_a_bad_request_on_the_page_says_why_and_saves_nothing(admin_client):
    response = admin_client.post(
        reverse("registry:role-grant-create"),
        {"kind": RoleGrant.Kind.GRANT_ROLE, "user": "nobody_here", "reason": ""},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "There is no user nobody_here." in body
    assert "This field is required." in body
    assert not RoleGrant.objects.exists()


def test_the_queue_offers_others_requests_only(client, admin, second_admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")
    decide = reverse("registry:role-grant-decide", args=[grant.pk, "approve"])

    client.force_login(admin)
    own = client.get(reverse("registry:role-grant-queue"), HTTP_ACCEPT_LANGUAGE="en")
    assert decide not in own.content.decode()
    assert "buyer_person" in own.content.decode()  # listed as waiting on others

    client.force_login(second_admin)
    other = client.get(
        reverse("registry:role-grant-queue"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert decide in other
    assert grant.reason in other


def test_self_approval_on_the_page_is_refused(admin_client, admin, buyer):
    grant = _request(admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier")

    response = admin_client.post(
        reverse("registry:role-grant-decide", args=[grant.pk, "approve"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 403
    assert "another registry admin must decide it" in response.content.decode()
    grant.refresh_from_db()
    assert grant.status == RoleGrant.Status.PENDING
    assert _roles(buyer) == {Role.BUYER}


def test_approval_and_rejection_on_the_page(client, admin, second_admin, buyer):
    to_approve = _request(
        admin, kind=RoleGrant.Kind.GRANT_ROLE, user=buyer, role="verifier"
    )
    to_reject = _request(
        admin,
        kind=RoleGrant.Kind.ADD_MEMBERSHIP,
        user=buyer,
        organization=OrganizationFactory(),
    )
    client.force_login(second_admin)

    approved = client.post(
        reverse("registry:role-grant-decide", args=[to_approve.pk, "approve"])
    )
    no_note = client.post(
        reverse("registry:role-grant-decide", args=[to_reject.pk, "reject"]),
        {"note": ""},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    rejected = client.post(
        reverse("registry:role-grant-decide", args=[to_reject.pk, "reject"]),
        {"note": "Wrong organization."},
    )

    assert approved.status_code == 302
    assert no_note.status_code == 400
    assert "Give a reason for the rejection" in no_note.content.decode()
    assert rejected.status_code == 302
    to_approve.refresh_from_db()
    to_reject.refresh_from_db()
    assert (to_approve.status, to_approve.decided_by) == ("approved", second_admin)
    assert (to_reject.status, to_reject.decision_note) == (
        "rejected",
        "Wrong organization.",
    )
    assert _roles(buyer) == {Role.BUYER, Role.VERIFIER}
    assert buyer.organizations.count() == 1


def test_the_audit_page_lists_who_asked_who_decided_and_why(
    client, admin, second_admin, buyer
):
    grant = _request(
        admin,
        kind=RoleGrant.Kind.GRANT_ROLE,
        user=buyer,
        role="verifier",
        reason="Joins the verification team.",
    )
    services.approve_role_grant(grant=grant, approver=second_admin, note="Checked ID.")
    pending = _request(
        admin,
        kind=RoleGrant.Kind.ADD_MEMBERSHIP,
        user=buyer,
        organization=OrganizationFactory(name_en="Filtered away"),
    )
    client.force_login(second_admin)

    body = client.get(
        reverse("registry:role-grant-audit"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    row = re.search(rf"<td>{grant.pk}</td>.*?</tr>", body, re.DOTALL).group(0)
    for expected in (
        admin.username,
        second_admin.username,
        "buyer_person",
        "Verifier",
        "Joins the verification team.",
        "Checked ID.",
        "Approved",
    ):
        assert expected in row
    assert "Filtered away" in body

    filtered = client.get(
        reverse("registry:role-grant-audit"),
        {"status": "approved"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "Joins the verification team." in filtered
    assert "Filtered away" not in filtered
    assert f"<td>{pending.pk}</td>" not in filtered


def test_a_new_user_chooses_their_password_through_the_link(
    client, admin, second_admin
):
    grant = _request(
        admin,
        kind=RoleGrant.Kind.CREATE_USER,
        username="new_buyer",
        email="new.buyer@example.cn",
        role=Role.BUYER,
        organization=OrganizationFactory(),
    )
    client.force_login(second_admin)
    approved = client.post(
        reverse("registry:role-grant-decide", args=[grant.pk, "approve"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert approved.status_code == 200
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.buyer@example.cn"]
    link = re.search(r"http://testserver(/password/set/\S+)", mail.outbox[0].body)
    assert link is not None
    path = link.group(1)
    # Neither the approver nor the requester ever sees the link.
    assert "/password/set/" not in approved.content.decode()
    assert "new.buyer@example.cn" in approved.content.decode()
    # The requester never sees the link.
    client.force_login(admin)
    assert path not in client.get(reverse("registry:role-grant-audit")).content.decode()

    client.logout()
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"new_password1": "a new secret 4321", "new_password2": "a new secret 4321"},
    )
    assert done.status_code == 302
    user = User.objects.get(username="new_buyer")
    assert user.check_password("a new secret 4321")
    signed_in = client.post(
        reverse("login"), {"username": "new_buyer", "password": "a new secret 4321"}
    )
    assert signed_in.status_code == 302
    assert client.get(reverse("account")).status_code == 200

    client.logout()
    again = client.get(path, follow=True)
    assert "This link does not work" in again.content.decode()


def test_the_approval_page_says_so_when_the_link_could_not_be_sent(
    client, admin, second_admin, monkeypatch
):
    grant = _request(
        admin,
        kind=RoleGrant.Kind.CREATE_USER,
        username="unlucky",
        email="unlucky@example.cn",
        role=Role.BUYER,
        organization=OrganizationFactory(),
    )
    monkeypatch.setattr(services, "send_mail", lambda *args, **kwargs: 0)
    client.force_login(second_admin)
    page = client.post(
        reverse("registry:role-grant-decide", args=[grant.pk, "approve"]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()

    assert "could not be sent" in page
    assert "/password/set/" not in page
    assert reverse("registry:password-reset") in page


def test_anyone_asks_for_a_password_link_by_e_mail(client, db):
    user = UserFactory(email="forgetful@example.cn")
    page = client.post(
        reverse("registry:password-reset"),
        {"email": "forgetful@example.cn"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert page.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["forgetful@example.cn"]
    path = re.search(r"http://testserver(/password/set/\S+)", mail.outbox[0].body)
    assert path is not None
    form_page = client.get(path.group(1), follow=True)
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a new secret 4321", "new_password2": "a new secret 4321"},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a new secret 4321")


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, db):
    answer = client.post(
        reverse("registry:password-reset"), {"email": "nobody@example.cn"}
    )
    assert answer.status_code == 302
    assert answer.url == reverse("registry:password-reset-sent")
    assert mail.outbox == []


def _grants(admin, count: int) -> None:
    organization = OrganizationFactory()
    for _ in range(count):
        _request(
            admin,
            kind=RoleGrant.Kind.ADD_MEMBERSHIP,
            user=UserFactory(),
            organization=organization,
        )


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "page", ["registry:role-grant-audit", "registry:role-grant-queue"]
)
def test_the_grant_pages_cost_the_same_queries_for_1_or_20_grants(
    client, admin, second_admin, page
):
    client.force_login(second_admin)
    _grants(admin, 1)
    one = _queries(client, reverse(page))
    _grants(admin, 19)
    twenty = _queries(client, reverse(page))
    assert twenty == one
