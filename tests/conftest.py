import pytest

from registry.roles import Role
from tests.registry.factories import MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def make_user(db):
    """A user with ``role`` acting for ``organization`` (a new one if omitted)."""

    def make(role: Role | None = None, organization=None, **fields):
        user = UserFactory(**fields)
        if role is not None:
            from registry.services import grant_role

            grant_role(user=user, role=role)
        MembershipFactory(user=user, organization=organization or OrganizationFactory())
        return user

    return make
