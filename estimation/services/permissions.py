"""The permission step the dataset and run services share."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from registry.models import Organization, User
from registry.roles import Role
from registry.selectors import has_role, is_staff_of


def require_staff_of(actor: User, organization: Organization) -> None:
    """Bureau staff acting for ``organization``, or a registry admin."""
    if not is_staff_of(actor, organization) and not has_role(
        actor, Role.REGISTRY_ADMIN
    ):
        raise PermissionDenied(
            _("Only bureau staff acting for %(organization)s can do this.")
            % {"organization": organization.display_name}
        )
