"""The permission step the dataset and run services share."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from estimation.selectors import may_estimate_for
from registry.models import Organization, User


def require_staff_of(actor: User, organization: Organization) -> None:
    """Bureau staff acting for ``organization``, or a registry admin."""
    if not may_estimate_for(actor, organization):
        raise PermissionDenied(
            _("Only bureau staff acting for %(organization)s can do this.")
            % {"organization": organization.display_name}
        )
