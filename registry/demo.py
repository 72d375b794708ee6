"""The Bijie demo: organizations and one user per role. Idempotent.

Every demo organization is marked ``is_demo``; every demo user has the password
``bijie-demo``. Production settings refuse to load it.
"""

import math
from dataclasses import dataclass
from datetime import date

from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import transaction

from registry import services
from registry.boundaries import normalize_geometry
from registry.divisions import load_divisions
from registry.models import AdministrativeDivision, Organization, Project, User
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


@dataclass(frozen=True)
class DemoProject:
    name_zh: str
    name_en: str
    owner_key: str
    county_adcode: str
    area_ha: int
    ecosystem_focus: str
    final_status: str
    # Where inside the county, as fractions of its bounding box (west->east,
    # south->north); the point is moved inside the county if it falls outside.
    position: tuple[float, float]


PROJECTS = (
    DemoProject(
        "百里杜鹃林区森林碳汇项目",
        "Baili Azalea Forest Carbon Sink Project",
        "bureau",
        "520521",
        420,
        "forest",
        "registered",
        (0.55, 0.45),
    ),
    DemoProject(
        "新春村集体林碳汇项目",
        "Xinchun Village Collective Forest Carbon Project",
        "village",
        "520521",
        86,
        "forest",
        "registered",
        (0.3, 0.6),
    ),
    DemoProject(
        "草海湿地碳汇项目",
        "Caohai Wetland Carbon Sink Project",
        "bureau",
        "520526",
        160,
        "wetland",
        "submitted",
        (0.5, 0.5),
    ),
    DemoProject(
        "赫章县高山草地碳汇项目",
        "Hezhang Upland Grassland Carbon Project",
        "bureau",
        "520527",
        240,
        "grassland",
        "suspended",
        (0.4, 0.5),
    ),
    DemoProject(
        "织金县石漠化治理造林项目",
        "Zhijin Rocky-Desertification Afforestation Project",
        "village",
        "520524",
        130,
        "forest",
        "draft",
        (0.5, 0.4),
    ),
)


def _demo_square(county, project: DemoProject):
    """A square of the project's area around a point inside the county."""
    west, south, east, north = county.boundary.extent
    fx, fy = project.position
    centre = Point(west + fx * (east - west), south + fy * (north - south), srid=4326)
    if not county.boundary.contains(centre):
        centre = county.boundary.point_on_surface
    side_m = math.sqrt(project.area_ha * 10_000)
    half_lat = side_m / 2 / 110_574
    half_lon = side_m / 2 / (111_320 * math.cos(math.radians(centre.y)))
    x, y = centre.x, centre.y
    ring = (
        (x - half_lon, y - half_lat),
        (x + half_lon, y - half_lat),
        (x + half_lon, y + half_lat),
        (x - half_lon, y + half_lat),
        (x - half_lon, y - half_lat),
    )
    return MultiPolygon(Polygon(ring), srid=4326)


@transaction.atomic
def load_demo_projects(organizations: dict[str, Organization]) -> list:
    """Demo projects inside real Bijie counties, one or more per lifecycle state,
    each moved to its state through the registry's services. Idempotent."""
    if not AdministrativeDivision.objects.exists():
        load_divisions(AdministrativeDivision)

    staff = {
        "bureau": User.objects.get(username="bureau_demo"),
        "village": User.objects.get(username="village_demo"),
    }
    admin = User.objects.get(username="registry_admin_demo")
    projects = []
    for demo in PROJECTS:
        existing = Project.objects.filter(name_en=demo.name_en, is_demo=True).first()
        if existing is not None:
            projects.append(existing)
            continue
        county = AdministrativeDivision.objects.get(adcode=demo.county_adcode)
        actor = staff[demo.owner_key]
        project = services.create_project(
            actor=actor,
            details=services.ProjectDetails(
                name_zh=demo.name_zh,
                name_en=demo.name_en,
                owner=organizations[demo.owner_key],
                county=county,
                crediting_start=date(2021, 1, 1),
                crediting_end=date(2050, 12, 31),
                ecosystem_focus=demo.ecosystem_focus,
                description=(
                    "演示项目：边界为示意方块，位于真实县域内。 / Demo project: the "
                    "boundary is an illustrative square inside a real county."
                ),
            ),
            boundary=normalize_geometry(_demo_square(county, demo)),
            is_demo=True,
        )
        if demo.final_status != "draft":
            services.submit_project(actor=actor, project=project)
        if demo.final_status in ("registered", "suspended"):
            services.approve_project(actor=admin, project=project)
        if demo.final_status == "suspended":
            services.suspend_project(
                actor=admin,
                project=project,
                reason="监测报告逾期未交 / Monitoring report overdue.",
            )
        project.refresh_from_db()
        projects.append(project)
    return projects
