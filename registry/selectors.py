"""Reads for the registry app that more than one caller needs."""

from django.db.models import QuerySet

from registry.models import Organization, User
from registry.roles import Role


def list_user_organizations(*, user: User) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name_en")


def get_user_roles(*, user: User) -> list[Role]:
    """The user's roles, in the order Role declares them."""
    if not user.is_authenticated:
        return []
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in Role if role.value in names]
