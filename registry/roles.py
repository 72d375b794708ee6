"""Roles are Django groups; this module names them and the permissions each holds.

Object-level access follows organization membership (see selectors); the group
only says what kind of work a user may do at all.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    BUREAU_STAFF = "bureau_staff", _("Bureau staff")
    VERIFIER = "verifier", _("Verifier")
    BUYER = "buyer", _("Buyer")
    REGISTRY_ADMIN = "registry_admin", _("Registry admin")


# "app_label.codename" strings; permissions created by later migrations are
# attached when migrations run (see registry.apps).
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
        "estimation.view_classscheme",
        "estimation.add_classscheme",
        "estimation.change_classscheme",
        "estimation.view_classmapping",
        "estimation.add_classmapping",
        "estimation.change_classmapping",
        "estimation.delete_classmapping",
        "estimation.view_methodology",
        "estimation.add_methodology",
        "estimation.change_methodology",
        "estimation.view_coefficient",
        "estimation.add_coefficient",
        "estimation.change_coefficient",
        "estimation.delete_coefficient",
        "estimation.view_landcoverdataset",
        "estimation.view_estimationrun",
        "estimation.view_ecosystemresult",
        "estimation.view_verification",
        "registry.view_projectevent",
        "trading.view_creditbatch",
        "trading.view_creditblock",
        "trading.view_ledgerentry",
        "trading.view_traderequest",
        "trading.view_ledgercheck",
        "registry.view_organization",
        "registry.add_organization",
        "registry.change_organization",
        # People are seen, not managed: users, roles and memberships change
        # only through role grants a second registry admin approves
        # (registry.services.request_role_grant).
        "registry.view_membership",
        "registry.view_user",
        "registry.view_rolegrant",
    ),
}

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
