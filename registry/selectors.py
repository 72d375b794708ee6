"""Reads for the registry app that more than one caller needs, and the access
rules they imply: a user sees and changes only what their organization may."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db.models import Count, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from registry.boundaries import geodesic_area_ha
from registry.models import (
    Account,
    AdministrativeDivision,
    Alert,
    Heartbeat,
    Organization,
    Project,
    ProjectDocument,
    ProjectEvent,
    ProjectStatusChange,
    RoleGrant,
    User,
)
from registry.roles import Role


def list_user_organizations(*, user: User) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name_en")


def get_user_roles(*, user: User) -> list[Role]:
    """The user's roles, in the order Role declares them (cached per user object)."""
    if not user.is_authenticated:
        return []
    if not hasattr(user, "_registry_roles"):
        names = set(user.groups.values_list("name", flat=True))
        user._registry_roles = [role for role in Role if role.value in names]
    return user._registry_roles


def has_role(user: User, role: Role) -> bool:
    return role in get_user_roles(user=user)


def get_user_organization_ids(*, user: User) -> frozenset[int]:
    """The ids of the organizations the user acts for (cached per user object,
    like the roles: one query per request however many checks it makes)."""
    if not user.is_authenticated:
        return frozenset()
    if not hasattr(user, "_registry_organization_ids"):
        user._registry_organization_ids = frozenset(
            user.memberships.values_list("organization_id", flat=True)
        )
    return user._registry_organization_ids


def is_member(user: User, organization: Organization) -> bool:
    return organization.pk in get_user_organization_ids(user=user)


def is_staff_of(user: User, organization: Organization) -> bool:
    """Bureau staff acting for ``organization``: the one answer to "is this
    user the organization's staff", for projects, datasets and runs alike."""
    return has_role(user, Role.BUREAU_STAFF) and is_member(user, organization)


def can_edit_project(user: User, project: Project) -> bool:
    """Drafts are edited by bureau staff of the owner organization."""
    return project.status == Project.Status.DRAFT and is_staff_of(user, project.owner)


def allowed_project_actions(user: User, project: Project) -> list[str]:
    """The lifecycle steps the user may take on the project now."""
    steps = []
    if can_edit_project(user, project):
        steps.append("submit")
    if has_role(user, Role.REGISTRY_ADMIN):
        steps += [
            step
            for step, (allowed_from, _to) in Project.TRANSITIONS.items()
            if step != "submit" and project.status in allowed_from
        ]
    return steps


def can_view_project(user: User, project: Project) -> bool:
    """Anyone sees submitted and later projects; drafts stay with their owner's
    members and registry admins."""
    return (
        project.is_public
        or has_role(user, Role.REGISTRY_ADMIN)
        or is_member(user, project.owner)
    )


def can_view_document(user: User, document: ProjectDocument) -> bool:
    project = document.project
    if not can_view_project(user, project):
        return False
    if document.kind in ProjectDocument.PUBLIC_KINDS:
        return True
    return (
        has_role(user, Role.REGISTRY_ADMIN)
        or has_role(user, Role.VERIFIER)
        or is_member(user, project.owner)
    )


def list_counties() -> QuerySet[AdministrativeDivision]:
    return AdministrativeDivision.objects.filter(
        level=AdministrativeDivision.Level.COUNTY
    ).order_by("adcode")


def get_city() -> AdministrativeDivision | None:
    return AdministrativeDivision.objects.filter(
        level=AdministrativeDivision.Level.CITY
    ).first()


def list_projects(
    *,
    user: User,
    county: str = "",
    status: str = "",
    ecosystem: str = "",
    text: str = "",
) -> QuerySet[Project]:
    """Projects the user may see, filtered; public ones for everyone, plus the
    drafts of the user's organizations (all drafts for registry admins)."""
    visible = Q(status__in=Project.PUBLIC_STATUSES)
    if has_role(user, Role.REGISTRY_ADMIN):
        visible = Q()
    elif user.is_authenticated:
        visible |= Q(owner__memberships__user=user)
    projects = Project.objects.filter(visible)
    if county:
        projects = projects.filter(county__adcode=county)
    if status:
        projects = projects.filter(status=status)
    if ecosystem:
        projects = projects.filter(ecosystem_focus=ecosystem)
    if text.strip():
        term = text.strip()
        projects = projects.filter(
            Q(code__icontains=term)
            | Q(name_zh__icontains=term)
            | Q(name_en__icontains=term)
            | Q(owner__name_zh__icontains=term)
            | Q(owner__name_en__icontains=term)
        )
    return (
        projects.select_related("owner", "county")
        .defer("boundary", "county__boundary", "description")
        .distinct()
        .order_by("-created_at", "-pk")
    )


def get_project_for_user(*, user: User, code: str) -> Project | None:
    project = (
        Project.objects.select_related("owner", "county", "created_by")
        .defer("county__boundary")
        .filter(code=code)
        .first()
    )
    if project is None or not can_view_project(user, project):
        return None
    return project


@dataclass(frozen=True)
class ProjectOverlap:
    project: Project
    area_ha: Decimal
    geometry: GEOSGeometry


def find_project_overlaps(
    *, boundary: MultiPolygon, exclude_pk: int | None = None
) -> list[ProjectOverlap]:
    """Live (submitted or registered) projects whose boundary overlaps
    ``boundary``, with the overlap's geodesic area; touching is no overlap.

    The indexed bounding-box columns narrow the candidates on any database; the
    exact intersection then runs on those few only.
    """
    west, south, east, north = boundary.extent
    candidates = (
        Project.objects.filter(
            status__in=Project.LIVE_STATUSES,
            bbox_west__lte=east,
            bbox_east__gte=west,
            bbox_south__lte=north,
            bbox_north__gte=south,
        )
        .exclude(pk=exclude_pk)
        .select_related("owner")
    )
    overlaps = []
    for candidate in candidates:
        shared = candidate.boundary.intersection(boundary)
        if shared.empty or shared.area == 0:
            continue
        overlaps.append(
            ProjectOverlap(
                project=candidate, area_ha=geodesic_area_ha(shared), geometry=shared
            )
        )
    return sorted(overlaps, key=lambda overlap: overlap.area_ha, reverse=True)


def list_status_changes(*, project: Project):
    return project.status_changes.select_related("actor").order_by("created_at", "pk")


@dataclass(frozen=True)
class HistoryItem:
    """One row of a project's history: a status change or another step."""

    at: datetime
    change: ProjectStatusChange | None = None
    event: ProjectEvent | None = None

    @property
    def actor(self) -> User:
        return (self.change or self.event).actor


def list_project_history(*, project: Project) -> list[HistoryItem]:
    """Status changes and the other recorded steps (verification, issuance), in
    the order they happened."""
    items = [
        HistoryItem(at=change.created_at, change=change)
        for change in list_status_changes(project=project)
    ]
    items += [
        HistoryItem(at=event.created_at, event=event)
        for event in project.events.select_related("actor").order_by("created_at", "pk")
    ]
    # sorted() is stable: rows of one kind keep their own order on equal times.
    return sorted(items, key=lambda item: item.at)


def holding_account(organization: Organization) -> Account | None:
    """The organization's holding account (one per organization), where credits
    issued or transferred to it land; None if it has none yet."""
    return Account.objects.filter(
        organization=organization, kind=Account.Kind.HOLDING
    ).first()


def list_project_batches(*, project: Project) -> QuerySet:
    return project.batches.select_related("project").order_by("monitoring_start", "pk")


def get_project_credit_totals(*, project: Project) -> dict[str, int]:
    """Credits issued to date: batches, tonnes issued, of which in the buffer."""
    totals = project.batches.aggregate(
        batches=Count("pk"), issued=Sum("quantity"), buffer=Sum("buffer_quantity")
    )
    return {key: value or 0 for key, value in totals.items()}


def list_visible_documents(*, user: User, project: Project) -> list[ProjectDocument]:
    return [
        document
        for document in project.documents.select_related("project__owner")
        if can_view_document(user, document)
    ]


def list_visible_organizations(*, user: User) -> QuerySet[Organization]:
    """The user's organizations; every organization for registry admins."""
    if has_role(user, Role.REGISTRY_ADMIN):
        return Organization.objects.order_by("name_en", "pk")
    return list_user_organizations(user=user)


# Role grants ------------------------------------------------------------------


def may_manage_role_grants(user: User) -> bool:
    """Registry admins (and the operator's superusers) request and decide role
    grants; nobody else sees them."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or has_role(user, Role.REGISTRY_ADMIN))
    )


def _role_grants() -> QuerySet[RoleGrant]:
    return RoleGrant.objects.select_related(
        "user", "organization", "requested_by", "decided_by"
    )


def list_role_grants(
    *, status: str = "", kind: str = "", role: str = "", text: str = ""
) -> QuerySet[RoleGrant]:
    """Every role grant, newest first, for the audit page; ``text`` matches the
    usernames of whom it is about, who asked and who decided."""
    grants = _role_grants()
    if status:
        grants = grants.filter(status=status)
    if kind:
        grants = grants.filter(kind=kind)
    if role:
        grants = grants.filter(role=role)
    if text.strip():
        term = text.strip()
        grants = grants.filter(
            Q(user__username__icontains=term)
            | Q(username__icontains=term)
            | Q(requested_by__username__icontains=term)
            | Q(decided_by__username__icontains=term)
            | Q(organization__name_zh__icontains=term)
            | Q(organization__name_en__icontains=term)
        )
    return grants.order_by("-requested_at", "-pk")


def list_role_grants_to_decide(*, user: User) -> QuerySet[RoleGrant]:
    """Pending grants ``user`` may decide: asked for by someone else and not
    about ``user``, oldest first."""
    return (
        _role_grants()
        .filter(status=RoleGrant.Status.PENDING)
        .exclude(requested_by=user)
        .exclude(user=user)
        .order_by("requested_at", "pk")
    )


def list_role_grants_waiting_on_others(*, user: User) -> QuerySet[RoleGrant]:
    """Pending grants ``user`` asked for or that are about them: another
    registry admin decides these."""
    return (
        _role_grants()
        .filter(status=RoleGrant.Status.PENDING)
        .filter(Q(requested_by=user) | Q(user=user))
        .order_by("requested_at", "pk")
    )


def find_pending_role_grant(grant: RoleGrant) -> RoleGrant | None:
    """A pending grant for the same change as ``grant`` (another one), if any:
    the same user and role, the same user and organization, or the same new
    username."""
    pending = RoleGrant.objects.filter(status=RoleGrant.Status.PENDING).exclude(
        pk=grant.pk
    )
    if grant.kind in RoleGrant.ROLE_KINDS:
        pending = pending.filter(
            kind__in=RoleGrant.ROLE_KINDS, user=grant.user, role=grant.role
        )
    elif grant.kind in RoleGrant.MEMBERSHIP_KINDS:
        pending = pending.filter(
            kind__in=RoleGrant.MEMBERSHIP_KINDS,
            user=grant.user,
            organization=grant.organization,
        )
    else:
        pending = pending.filter(
            kind=RoleGrant.Kind.CREATE_USER, username__iexact=grant.username
        )
    return pending.order_by("pk").first()


def password_setup_path(*, user: User) -> str:
    """The path of the one-time link where ``user`` chooses a password (Django's
    password-reset token, so it dies once used or once the user signs in)."""
    return reverse(
        "registry:password-set",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )


# Alerts and heartbeats ----------------------------------------------------------


def may_see_alerts(user: User) -> bool:
    """Registry admins see and acknowledge alerts; nobody else. Costs no query
    once the user's roles are known (the navigation reads them first)."""
    return bool(
        user.is_authenticated and user.is_active and has_role(user, Role.REGISTRY_ADMIN)
    )


def list_open_alerts() -> QuerySet[Alert]:
    """Alerts nobody has acknowledged yet, newest first (one query)."""
    return Alert.objects.filter(acknowledged_at__isnull=True).order_by(
        "-raised_at", "-pk"
    )


def find_open_alert(*, kind: str, key: str) -> Alert | None:
    return Alert.objects.filter(
        kind=kind, key=key, acknowledged_at__isnull=True
    ).first()


def alert_was_raised(*, kind: str, key: str) -> bool:
    """Whether an alert of this kind and key exists, open or acknowledged."""
    return Alert.objects.filter(kind=kind, key=key).exists()


def list_alert_recipients() -> list[str]:
    """The e-mail addresses of every active registry admin, each once."""
    return list(
        User.objects.filter(is_active=True, groups__name=Role.REGISTRY_ADMIN.value)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class HeartbeatStatus:
    component: str
    last_heartbeat: datetime | None
    hostname: str
    # No heartbeat, or the last one older than HEARTBEAT_STALE_AFTER_SECONDS.
    silent: bool


def list_heartbeat_statuses(*, now: datetime | None = None) -> list[HeartbeatStatus]:
    """The worker's and beat's last heartbeats and whether each is silent
    (one query)."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.HEARTBEAT_STALE_AFTER_SECONDS)
    rows = {row.component: row for row in Heartbeat.objects.all()}
    statuses = []
    for component in Heartbeat.Component.values:
        row = rows.get(component)
        statuses.append(
            HeartbeatStatus(
                component=component,
                last_heartbeat=row.beat_at if row else None,
                hostname=row.hostname if row else "",
                silent=row is None or row.beat_at < stale_before,
            )
        )
    return statuses
