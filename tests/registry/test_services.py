import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import translation

from registry.models import Membership, Organization
from registry.roles import Role, role_permissions
from registry.services import add_member, create_organization, grant_role
from tests.registry.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_create_organization_normalises_and_saves():
    organization = create_organization(
        name_zh=" 毕节市林业局 ",
        name_en="Bijie Forestry Bureau",
        kind=Organization.Kind.FORESTRY_BUREAU,
        uscc="9144030071526726xg",
    )
    organization.refresh_from_db()
    assert organization.name_zh == "毕节市林业局"
    assert organization.uscc == "9144030071526726XG"


def test_create_organization_refuses_a_bad_check_digit_in_chinese():
    with translation.override("zh-hans"):
        with pytest.raises(ValidationError) as raised:
            create_organization(
                name_zh="某公司",
                name_en="Some company",
                kind=Organization.Kind.BUYER,
                uscc="914403001922038217",
            )
        assert "校验码" in str(raised.value.message_dict["uscc"])
    assert not Organization.objects.exists()


def test_create_organization_refuses_a_duplicate_code():
    OrganizationFactory(uscc="914403001922038216")
    with pytest.raises(ValidationError) as raised:
        create_organization(
            name_zh="重复",
            name_en="Duplicate",
            kind=Organization.Kind.BUYER,
            uscc="914403001922038216",
        )
    assert "uscc" in raised.value.message_dict
    assert Organization.objects.count() == 1


def test_create_organization_refuses_an_unknown_kind():
    with pytest.raises(ValidationError) as raised:
        create_organization(
            name_zh="某", name_en="X", kind="bank", uscc="914403001922038216"
        )
    assert "kind" in raised.value.message_dict


def test_add_member_is_idempotent():
    user, organization = UserFactory(), OrganizationFactory()
    add_member(user=user, organization=organization)
    add_member(user=user, organization=organization)
    assert Membership.objects.filter(user=user).count() == 1
    assert list(user.organizations.all()) == [organization]


def test_role_groups_exist_with_their_permissions_after_migrate():
    for role, names in role_permissions().items():
        group = Group.objects.get(name=role.value)
        granted = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert granted == set(names)


def test_grant_registry_admin_gives_admin_site_access():
    user = UserFactory()
    grant_role(user=user, role=Role.REGISTRY_ADMIN)
    user.refresh_from_db()
    assert user.is_staff
    assert user.has_perm("registry.change_organization")
    assert not user.is_superuser


def test_grant_buyer_does_not_give_admin_site_access():
    user = UserFactory()
    grant_role(user=user, role=Role.BUYER)
    user.refresh_from_db()
    assert not user.is_staff
    assert user.groups.filter(name="buyer").exists()
    assert not user.has_perm("registry.change_organization")
