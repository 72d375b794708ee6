"""The Bijie demo: organizations and one user per role. Idempotent.

Every demo organization is marked ``is_demo``; every demo user has the password
``bijie-demo``. Production settings refuse to load it.
"""

from dataclasses import dataclass

from django.db import transaction

from registry.models import Organization, User
from registry.roles import Role
from registry.services import add_member, create_organization, grant_role

DEMO_PASSWORD = "bijie-demo"


@dataclass(frozen=True)
class DemoOrganization:
    key: str
    name_zh: str
    name_en: str
    kind: str
    uscc: str


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role
    organization_key: str


ORGANIZATIONS = (
    DemoOrganization(
        "bureau",
        "毕节市林业局",
        "Bijie Forestry Bureau",
        Organization.Kind.FORESTRY_BUREAU,
        "11520500MB1725930N",
    ),
    DemoOrganization(
        "verifier",
        "贵州黔源碳核查技术有限公司",
        "Guizhou Qianyuan Carbon Verification Co., Ltd.",
        Organization.Kind.VERIFIER,
        "91520100MA6DK7H2XE",
    ),
    DemoOrganization(
        "buyer",
        "贵州绿筑建设集团有限公司",
        "Guizhou Lvzhu Construction Group Co., Ltd.",
        Organization.Kind.BUYER,
        "91520100MA6H3QW5LD",
    ),
    DemoOrganization(
        "village",
        "大方县羊场镇新春村股份经济合作社",
        "Xinchun Village Collective, Yangchang Town, Dafang County",
        Organization.Kind.PROJECT_OWNER,
        "N2520521MF01947364",
    ),
    DemoOrganization(
        "operator",
        "毕节市林业碳汇登记中心",
        "Bijie Forestry Carbon Sink Registry Centre",
        Organization.Kind.REGISTRY_OPERATOR,
        "12520500MB18360416",
    ),
)

USERS = (
    DemoUser("bureau_demo", "林", "毕节", Role.BUREAU_STAFF, "bureau"),
    DemoUser("verifier_demo", "审", "黔源", Role.VERIFIER, "verifier"),
    DemoUser("buyer_demo", "买", "绿筑", Role.BUYER, "buyer"),
    DemoUser("village_demo", "村", "新春", Role.BUREAU_STAFF, "village"),
    DemoUser("registry_admin_demo", "管", "登记", Role.REGISTRY_ADMIN, "operator"),
)


@transaction.atomic
def load_demo_organizations_and_users() -> dict[str, Organization]:
    """Create or refresh the demo organizations and users; return orgs by key."""
    organizations = {}
    for demo in ORGANIZATIONS:
        organization = Organization.objects.filter(uscc=demo.uscc).first()
        if organization is None:
            organization = create_organization(
                name_zh=demo.name_zh,
                name_en=demo.name_en,
                kind=demo.kind,
                uscc=demo.uscc,
                is_demo=True,
            )
        organizations[demo.key] = organization

    for demo in USERS:
        user, created = User.objects.get_or_create(
            username=demo.username,
            defaults={
                "first_name": demo.first_name,
                "last_name": demo.last_name,
                "email": f"{demo.username}@demo.invalid",
            },
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        grant_role(user=user, role=demo.role)
        add_member(user=user, organization=organizations[demo.organization_key])
    return organizations
