"""Writes for the registry app. Every function here is the only way its rows change.

Guarantees: inputs are validated with ``full_clean`` (model constraints included)
before anything is saved; each call is one transaction.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from registry.models import Membership, Organization, User
from registry.roles import ROLE_PERMISSIONS, Role


@transaction.atomic
def sync_role_groups(*, using: str = "default") -> dict[Role, Group]:
    """Create the role groups and set each one's permissions to ROLE_PERMISSIONS.

    Idempotent; permissions not created yet are skipped and picked up on the next
    migrate.
    """
    groups = {}
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = [name.split(".", 1) for name in names]
        permissions = [
            permission
            for permission in Permission.objects.using(using).select_related(
                "content_type"
            )
            if [permission.content_type.app_label, permission.codename] in wanted
        ]
        group.permissions.set(permissions)
        groups[role] = group
    return groups


@transaction.atomic
def create_organization(
    *, name_zh: str, name_en: str, kind: str, uscc: str, is_demo: bool = False
) -> Organization:
    organization = Organization(
        name_zh=name_zh.strip(),
        name_en=name_en.strip(),
        kind=kind,
        uscc=uscc.strip().upper(),
        is_demo=is_demo,
    )
    organization.full_clean()
    organization.save()
    return organization


@transaction.atomic
def add_member(*, user: User, organization: Organization) -> Membership:
    """Let ``user`` act for ``organization``. Idempotent."""
    membership, _ = Membership.objects.get_or_create(
        user=user, organization=organization
    )
    return membership


@transaction.atomic
def grant_role(*, user: User, role: Role) -> None:
    """Put ``user`` in the group of ``role``; registry admins also get admin access."""
    user.groups.add(Group.objects.get(name=role.value))
    if role == Role.REGISTRY_ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
