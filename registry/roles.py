"""Roles are Django groups; this module names them and the permissions each holds.

Object-level access follows organization membership (see selectors); the group
only says what kind of work a user may do at all.
"""

from django.apps import apps as django_apps
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    BUREAU_STAFF = "bureau_staff", _("Bureau staff")
    VERIFIER = "verifier", _("Verifier")
    BUYER = "buyer", _("Buyer")
    REGISTRY_ADMIN = "registry_admin", _("Registry admin")


# "app_label.codename" strings for the registry's own models. Other apps add
# the permissions of theirs in their AppConfig (``role_permissions``), so no
# app names another's models; role_permissions() merges them. Permissions
# created by later migrations are attached when migrations run (registry.apps).
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.BUREAU_STAFF: (
        "registry.view_organization",
        "registry.view_project",
        "registry.add_project",
        "registry.change_project",
    ),
    Role.VERIFIER: ("registry.view_organization", "registry.view_project"),
    Role.BUYER: ("registry.view_organization",),
    Role.REGISTRY_ADMIN: (
        "registry.view_account",
        "registry.change_account",
        "registry.view_administrativedivision",
        "registry.view_project",
        "registry.change_project",
        "registry.view_projectdocument",
        "registry.view_projectstatuschange",
        "registry.view_projectevent",
        "registry.view_organization",
        "registry.add_organization",
        "registry.change_organization",
        # People are seen, not managed: users, roles and memberships change
        # only through role grants a second registry admin approves
        # (registry.services.request_role_grant).
        "registry.view_membership",
        "registry.view_user",
        "registry.view_rolegrant",
        "registry.view_alert",
    ),
}


def role_permissions() -> dict[Role, tuple[str, ...]]:
    """Every role's permissions: the registry's own and those each installed
    app declares for its models (``AppConfig.role_permissions``)."""
    merged = {role: list(names) for role, names in ROLE_PERMISSIONS.items()}
    for config in django_apps.get_app_configs():
        for role, names in getattr(config, "role_permissions", {}).items():
            merged.setdefault(role, []).extend(names)
    return {role: tuple(names) for role, names in merged.items()}


# What no role may hold, whatever ROLE_PERMISSIONS says later: with any of
# them one person could give a second account a role and approve their own
# requests with it. sync_role_groups never sets them, and migration 0006 took
# the ones registry admins used to hold from databases that had them.
PEOPLE_PERMISSIONS = (
    "registry.add_user",
    "registry.change_user",
    "registry.delete_user",
    "registry.add_membership",
    "registry.change_membership",
    "registry.delete_membership",
    "registry.add_rolegrant",
    "registry.change_rolegrant",
    "registry.delete_rolegrant",
    "auth.add_group",
    "auth.change_group",
    "auth.delete_group",
    "auth.add_permission",
    "auth.change_permission",
    "auth.delete_permission",
)
