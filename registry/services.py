"""Writes for the registry app. Every function here is the only way its rows change.

Guarantees: inputs are validated (``full_clean`` and the domain rules below)
before anything is saved; each call is one transaction, so a refusal changes
nothing. Refusals are ``ValidationError`` (bad input; ``StateConflict`` for
a wrong state, common/errors.py) or ``PermissionDenied`` (the actor may not do
this), with translated messages.

Double counting: a project may only be submitted or registered while its boundary
overlaps no other submitted or registered project by more than
``settings.REGISTRY_OVERLAP_TOLERANCE_HA``. The check and the status change run
under one lock (an advisory lock on PostgreSQL; SQLite serializes writers), so
two overlapping projects cannot both get through at once.
"""

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMessage, get_connection, send_mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from common.errors import NotPermitted, StateConflict, field_error
from common.storage import save_field_file
from registry.boundaries import Boundary
from registry.models import (
    Account,
    AdministrativeDivision,
    Alert,
    Heartbeat,
    Membership,
    Organization,
    Project,
    ProjectDocument,
    ProjectEvent,
    ProjectStatusChange,
    RoleGrant,
    User,
)
from registry.roles import PEOPLE_PERMISSIONS, Role, role_permissions
from registry.selectors import (
    ProjectOverlap,
    alert_was_raised,
    can_edit_project,
    find_open_alert,
    find_pending_role_grant,
    find_project_overlaps,
    has_role,
    is_staff_of,
    list_alert_recipients,
    list_heartbeat_statuses,
    may_manage_role_grants,
    may_see_alerts,
)

logger = logging.getLogger(__name__)

DOCUMENT_MAX_BYTES = 20 * 1024 * 1024
# File signatures of the document types the registry accepts.
DOCUMENT_SIGNATURES = {
    ".pdf": (b"%PDF-",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
}


@transaction.atomic
def sync_role_groups(*, using: str = "default") -> dict[Role, Group]:
    """Create the role groups and set each one's permissions to
    role_permissions() (the registry's and every app's).

    Idempotent; permissions not created yet are skipped and picked up on the next
    migrate.
    """
    groups = {}
    for role, names in role_permissions().items():
        group, _created = Group.objects.using(using).get_or_create(name=role.value)
        # Never people management, even if a role lists it by mistake.
        wanted = [
            name.split(".", 1) for name in names if name not in PEOPLE_PERMISSIONS
        ]
        permissions = [
            permission
            for permission in Permission.objects.using(using).select_related(
                "content_type"
            )
            if [permission.content_type.app_label, permission.codename] in wanted
        ]
        group.permissions.set(permissions)
        groups[role] = group
    return groups


@transaction.atomic
def create_organization(
    *, name_zh: str, name_en: str, kind: str, uscc: str, is_demo: bool = False
) -> Organization:
    """Create an organization with its holding account; the registry operator also
    gets the buffer-pool, retirement and cancellation accounts."""
    organization = Organization(
        name_zh=name_zh.strip(),
        name_en=name_en.strip(),
        kind=kind,
        uscc=uscc.strip().upper(),
        is_demo=is_demo,
    )
    organization.full_clean()
    organization.save()
    open_account(organization=organization, kind=Account.Kind.HOLDING)
    if kind == Organization.Kind.REGISTRY_OPERATOR:
        for registry_kind in Account.REGISTRY_KINDS:
            open_account(organization=organization, kind=registry_kind, is_public=True)
    return organization


@transaction.atomic
def open_account(
    *, organization: Organization, kind: str, is_public: bool = False
) -> Account:
    """Open an account and give it its public number, e.g. ``BJ-H-000012``."""
    account = Account(organization=organization, kind=kind, is_public=is_public)
    account.full_clean(exclude=["number"])
    account.save()
    account.number = f"BJ-{Account.NUMBER_PREFIX[account.kind]}-{account.pk:06d}"
    account.save(update_fields=["number"])
    return account


# The next four apply a change with no check of who asks: an approved role grant
# calls them (approve_role_grant), and so do the demo loader, the benchmarks
# and test fixtures. Pages and the API never do.


@transaction.atomic
def add_member(*, user: User, organization: Organization) -> Membership:
    """Let ``user`` act for ``organization``. Idempotent."""
    membership, _created = Membership.objects.get_or_create(
        user=user, organization=organization
    )
    user.__dict__.pop("_registry_organization_ids", None)  # the selectors' cache
    return membership


@transaction.atomic
def grant_role(*, user: User, role: Role) -> None:
    """Put ``user`` in the group of ``role``; registry admins also get admin access."""
    user.groups.add(Group.objects.get(name=role.value))
    user.__dict__.pop("_registry_roles", None)  # the selectors' cache
    if role == Role.REGISTRY_ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


@transaction.atomic
def remove_member(*, user: User, organization: Organization) -> None:
    """``user`` no longer acts for ``organization``. Idempotent."""
    Membership.objects.filter(user=user, organization=organization).delete()
    user.__dict__.pop("_registry_organization_ids", None)


@transaction.atomic
def revoke_role(*, user: User, role: Role) -> None:
    """Take ``user`` out of the group of ``role``; a former registry admin also
    loses admin access (a superuser keeps it: that is the operator's)."""
    user.groups.remove(Group.objects.get(name=role.value))
    user.__dict__.pop("_registry_roles", None)
    if role == Role.REGISTRY_ADMIN and user.is_staff and not user.is_superuser:
        user.is_staff = False
        user.save(update_fields=["is_staff"])


# Projects ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectDetails:
    """What bureau staff fill in for a project (all but the boundary)."""

    name_zh: str
    name_en: str
    owner: Organization
    county: AdministrativeDivision
    crediting_start: date
    crediting_end: date
    ecosystem_focus: str
    description: str = ""


# The project fields ProjectDetails carries, in its order.
DETAIL_FIELDS = tuple(field.name for field in dataclasses.fields(ProjectDetails))


class OverlapError(StateConflict):
    """The boundary overlaps live projects; ``overlaps`` says which and where."""

    def __init__(self, message: str, overlaps: list[ProjectOverlap]):
        super().__init__(message, code="overlap")
        self.overlaps = overlaps


def _check_may_register_for(actor: User, owner: Organization) -> None:
    if not is_staff_of(actor, owner):
        raise PermissionDenied(
            _("Only bureau staff acting for %(owner)s can register its projects.")
            % {"owner": owner.display_name}
        )


def _apply_details_and_boundary(
    project: Project, details: ProjectDetails, boundary: Boundary | None
) -> None:
    for field in DETAIL_FIELDS:
        value = getattr(details, field)
        setattr(project, field, value.strip() if isinstance(value, str) else value)
    if boundary is not None:
        geometry = boundary.geometry
        project.boundary = geometry
        project.area_ha = boundary.area_ha
        project.boundary_source_srid = boundary.source_srid
        (
            project.bbox_west,
            project.bbox_south,
            project.bbox_east,
            project.bbox_north,
        ) = geometry.extent
    if project.county.level != AdministrativeDivision.Level.COUNTY:
        raise ValidationError(
            {"county": _("Choose one of Bijie's counties or districts.")}
        )
    if not project.county.boundary.intersects(project.boundary):
        raise ValidationError(
            {
                "boundary": _(
                    "The boundary lies outside %(county)s: check the county or "
                    "the file's coordinate system."
                )
                % {"county": project.county.display_name}
            }
        )
    if project.crediting_end <= project.crediting_start:
        raise ValidationError(
            {"crediting_end": _("The crediting period must end after it starts.")}
        )
    project.full_clean(exclude=["code"])


def _record(project: Project, actor: User, from_status: str, reason: str = "") -> None:
    ProjectStatusChange.objects.create(
        project=project,
        from_status=from_status,
        to_status=project.status,
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def create_project(
    *,
    actor: User,
    details: ProjectDetails,
    boundary: Boundary,
    documents: list[tuple[str, UploadedFile]] = (),
    is_demo: bool = False,
) -> Project:
    """Create a draft project with its code ``BJ-<county adcode>-<number>``."""
    _check_may_register_for(actor, details.owner)
    project = Project(created_by=actor, is_demo=is_demo, status=Project.Status.DRAFT)
    _apply_details_and_boundary(project, details, boundary)
    project.save()
    project.code = f"BJ-{project.county.adcode}-{project.pk:05d}"
    project.save(update_fields=["code"])
    _record(project, actor, from_status="")
    for kind, uploaded in documents:
        add_project_document(actor=actor, project=project, kind=kind, uploaded=uploaded)
    return project


@transaction.atomic
def update_project(
    *,
    actor: User,
    project: Project,
    details: ProjectDetails,
    boundary: Boundary | None = None,
    documents: list[tuple[str, UploadedFile]] = (),
) -> Project:
    """Change a draft: its details, and its boundary when a new one is given."""
    project = lock_project(project.pk)
    if not can_edit_project(actor, project):
        raise PermissionDenied(_("You cannot edit this project."))
    _check_may_register_for(actor, details.owner)
    _apply_details_and_boundary(project, details, boundary)
    project.save()
    for kind, uploaded in documents:
        add_project_document(actor=actor, project=project, kind=kind, uploaded=uploaded)
    return project


@transaction.atomic
def add_project_document(
    *, actor: User, project: Project, kind: str, uploaded: UploadedFile
) -> ProjectDocument:
    """Store a PDF, PNG or JPEG (at most 20 MB) with its SHA-256."""
    if not can_edit_project(actor, project):
        raise PermissionDenied(_("You cannot add documents to this project."))
    name = uploaded.name or ""
    extension = name[name.rfind(".") :].lower() if "." in name else ""
    if extension not in DOCUMENT_SIGNATURES:
        raise ValidationError(
            _("%(name)s: documents must be PDF, PNG or JPEG files.") % {"name": name},
            code="document_type",
        )
    if uploaded.size > DOCUMENT_MAX_BYTES:
        raise ValidationError(
            _("%(name)s is larger than %(limit)d MB.")
            % {"name": name, "limit": DOCUMENT_MAX_BYTES // (1024 * 1024)},
            code="document_size",
        )
    digest = hashlib.sha256()
    head = b""
    for chunk in uploaded.chunks():
        head = head or chunk[:16]
        digest.update(chunk)
    if not head.startswith(DOCUMENT_SIGNATURES[extension]):
        raise ValidationError(
            _("%(name)s is not a real %(type)s file.")
            % {"name": name, "type": extension[1:].upper()},
            code="document_content",
        )
    uploaded.seek(0)
    document = ProjectDocument(
        project=project,
        kind=kind,
        original_name=name[-255:],
        size_bytes=uploaded.size,
        sha256=digest.hexdigest(),
        uploaded_by=actor,
    )
    save_field_file(
        document.file,
        f"{digest.hexdigest()[:16]}{extension}",
        uploaded,
        shown_name=name,
    )
    document.full_clean()
    document.save()
    return document


def lock_project(project_id: int) -> Project:
    """The project's row, fresh and locked for the rest of the transaction
    (where the database can lock rows: on SQLite the IMMEDIATE transaction
    already serializes writers). Every change that must see a project's
    latest state takes its turn here: lifecycle steps, verifications and
    issuances of one project."""
    return Project.objects.select_for_update().get(pk=project_id)


def _serialize_boundary_checks() -> None:
    """One double-counting check at a time (PostgreSQL advisory lock; SQLite's
    IMMEDIATE transactions already serialize writers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x0B15_C0DE])


def _refuse_overlaps(project: Project) -> None:
    tolerance = Decimal(str(settings.REGISTRY_OVERLAP_TOLERANCE_HA))
    overlaps = [
        overlap
        for overlap in find_project_overlaps(
            boundary=project.boundary, exclude_pk=project.pk
        )
        if overlap.area_ha > tolerance
    ]
    if overlaps:
        names = "; ".join(
            _("%(code)s %(name)s (%(area)s ha)")
            % {
                "code": overlap.project.code,
                "name": overlap.project.display_name,
                "area": f"{overlap.area_ha:,.2f}",
            }
            for overlap in overlaps
        )
        raise OverlapError(
            _(
                "The boundary overlaps another project by more than %(tolerance)s "
                "ha, so its carbon would be counted twice: %(projects)s."
            )
            % {"tolerance": tolerance, "projects": names},
            overlaps,
        )


def _transition(
    project: Project,
    step: str,
    *,
    actor: User,
    reason: str = "",
    reason_required: bool = False,
    check_overlaps: bool = False,
) -> Project:
    if reason_required and not reason.strip():
        raise ValidationError(
            {"reason": _("Give a reason: the owner will see it.")}, code="reason"
        )
    allowed_from, to_status = Project.TRANSITIONS[step]
    if check_overlaps:
        _serialize_boundary_checks()
    project = lock_project(project.pk)
    if project.status not in allowed_from:
        raise StateConflict(
            _("This project is now “%(status)s”, so this step is not possible.")
            % {"status": project.get_status_display()},
            code="state",
        )
    if check_overlaps:
        _refuse_overlaps(project)
    from_status = project.status
    project.status = to_status
    project.save(update_fields=["status", "updated_at"])
    _record(project, actor, from_status, reason.strip())
    return project


def _check_registry_admin(actor: User) -> None:
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can do this."))


@transaction.atomic
def submit_project(*, actor: User, project: Project) -> Project:
    """Draft -> submitted, refused while the boundary overlaps a live project."""
    if not can_edit_project(actor, project):
        raise PermissionDenied(_("Only the owner's bureau staff can submit it."))
    return _transition(
        project,
        "submit",
        actor=actor,
        check_overlaps=True,
    )


@transaction.atomic
def approve_project(*, actor: User, project: Project, reason: str = "") -> Project:
    """Submitted -> registered (registry admin), re-checking double counting."""
    _check_registry_admin(actor)
    return _transition(
        project,
        "approve",
        actor=actor,
        reason=reason,
        check_overlaps=True,
    )


@transaction.atomic
def return_project(*, actor: User, project: Project, reason: str) -> Project:
    """Submitted -> draft with the reason the owner must address."""
    _check_registry_admin(actor)
    return _transition(
        project,
        "return",
        actor=actor,
        reason=reason,
        reason_required=True,
    )


@transaction.atomic
def suspend_project(*, actor: User, project: Project, reason: str) -> Project:
    _check_registry_admin(actor)
    return _transition(
        project,
        "suspend",
        actor=actor,
        reason=reason,
        reason_required=True,
    )


@transaction.atomic
def reinstate_project(*, actor: User, project: Project, reason: str) -> Project:
    _check_registry_admin(actor)
    return _transition(
        project,
        "reinstate",
        actor=actor,
        reason=reason,
        reason_required=True,
        check_overlaps=True,
    )


@transaction.atomic
def close_project(*, actor: User, project: Project, reason: str) -> Project:
    _check_registry_admin(actor)
    return _transition(
        project,
        "close",
        actor=actor,
        reason=reason,
        reason_required=True,
    )


# History and checks other apps need ------------------------------------------------


@transaction.atomic
def record_project_event(
    *, project: Project, kind: str, actor: User, reference: str = "", note: str = ""
) -> ProjectEvent:
    """Add a step (verification, issuance) to the project's history. The caller
    has checked that ``actor`` may take it; this only records it."""
    event = ProjectEvent(
        project=project,
        kind=kind,
        actor=actor,
        reference=reference.strip()[:200],
        note=note.strip(),
    )
    event.full_clean()
    event.save()
    return event


def refuse_live_overlaps(*, project: Project) -> None:
    """Raise ``OverlapError`` if the project's boundary now overlaps another live
    project beyond the tolerance. Call inside the caller's transaction: the
    check holds the same lock as registration until it commits."""
    _serialize_boundary_checks()
    _refuse_overlaps(project)


# Role grants: who may do what changes only with a second person's approval ------


def _check_may_manage_role_grants(actor: User) -> None:
    if not may_manage_role_grants(actor):
        raise PermissionDenied(
            _("Only a registry admin can request or decide changes of roles.")
        )


def _role_label(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _check_role_grant_details(grant: RoleGrant) -> None:
    """What each kind needs; fields a kind does not use are cleared."""
    errors = {}
    if grant.kind not in RoleGrant.Kind.values:
        raise ValidationError(
            {"kind": _("Choose what to change.")}, code="role_grant_kind"
        )
    if not grant.reason:
        errors["reason"] = _(
            "Give a reason: it is kept with the change for anyone who audits it."
        )
    creates_user = grant.kind == RoleGrant.Kind.CREATE_USER
    if creates_user:
        grant.user = None
    elif grant.user is None:
        errors["user"] = _("Name the user this change is about.")
    if grant.kind in RoleGrant.MEMBERSHIP_KINDS:
        grant.role = ""
    elif grant.role not in Role.values:
        errors["role"] = _("Choose a role.")
    if grant.kind in RoleGrant.ROLE_KINDS:
        grant.organization = None
    elif grant.organization is None:
        errors["organization"] = _("Choose an organization.")
    if creates_user:
        if not grant.username:
            errors["username"] = _("Give the new user a username.")
        if not grant.email:
            errors["email"] = _(
                "Give the new user's e-mail address: the link to set a "
                "password goes there."
            )
    else:
        grant.username = grant.first_name = grant.last_name = grant.email = ""
    if errors:
        raise ValidationError(errors, code="role_grant_details")
    if creates_user:
        # The username and e-mail rules of the user model itself.
        try:
            User(
                username=grant.username,
                email=grant.email,
                first_name=grant.first_name,
                last_name=grant.last_name,
            ).clean_fields(exclude=["password"])
        except ValidationError as error:
            raise ValidationError(
                {
                    field: messages
                    for field, messages in error.message_dict.items()
                    if field in ("username", "email", "first_name", "last_name")
                },
                code="role_grant_details",
            ) from None


def _refuse_change_that_changes_nothing(grant: RoleGrant) -> None:
    """The change must still be one: checked when asked and again when approved,
    since roles and members may have changed in between."""
    kind = grant.kind
    names = {
        "user": grant.user.get_username() if grant.user_id else grant.username,
        "role": _role_label(grant.role),
        "organization": grant.organization.display_name
        if grant.organization_id
        else "",
        "username": grant.username,
        "email": grant.email,
    }
    if kind in RoleGrant.ROLE_KINDS:
        has_it = grant.user.groups.filter(name=grant.role).exists()
        if kind == RoleGrant.Kind.GRANT_ROLE and has_it:
            raise field_error(
                "role",
                _("%(user)s already has the role “%(role)s”.") % names,
                code="role_grant_no_change",
            )
        if kind == RoleGrant.Kind.REVOKE_ROLE and not has_it:
            raise field_error(
                "role",
                _("%(user)s does not have the role “%(role)s”.") % names,
                code="role_grant_no_change",
            )
    elif kind in RoleGrant.MEMBERSHIP_KINDS:
        member = Membership.objects.filter(
            user=grant.user, organization=grant.organization
        ).exists()
        if kind == RoleGrant.Kind.ADD_MEMBERSHIP and member:
            raise field_error(
                "organization",
                _("%(user)s already acts for %(organization)s.") % names,
                code="role_grant_no_change",
            )
        if kind == RoleGrant.Kind.REMOVE_MEMBERSHIP and not member:
            raise field_error(
                "organization",
                _("%(user)s does not act for %(organization)s.") % names,
                code="role_grant_no_change",
            )
    else:
        if User.objects.filter(username__iexact=grant.username).exists():
            raise field_error(
                "username",
                _("The username %(username)s is taken.") % names,
                code="role_grant_no_change",
            )
        if User.objects.filter(email__iexact=grant.email).exists():
            raise field_error(
                "email",
                _("A user with the e-mail address %(email)s already exists.") % names,
                code="role_grant_no_change",
            )


def _duplicate_pending(pending: RoleGrant | None) -> ValidationError:
    return ValidationError(
        _(
            "The same change is already waiting for a decision (request "
            "#%(number)s): decide that one first."
        )
        % {"number": pending.pk if pending else "?"},
        code="role_grant_duplicate",
    )


@transaction.atomic
def request_role_grant(
    *,
    actor: User,
    kind: str,
    reason: str,
    user: User | None = None,
    role: str = "",
    organization: Organization | None = None,
    username: str = "",
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> RoleGrant:
    """Ask for a change of roles or members; another registry admin decides it.

    ``kind`` says which: grant or revoke ``role`` for ``user``, add or remove
    ``user`` as a member of ``organization``, or create a user (``username``,
    names, ``email``) with ``role`` acting for ``organization``. The new user
    chooses their own password through a one-time link; nobody else sets it.
    """
    _check_may_manage_role_grants(actor)
    grant = RoleGrant(
        kind=kind,
        user=user,
        role=role or "",
        organization=organization,
        username=username.strip(),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=email.strip(),
        reason=reason.strip(),
        requested_by=actor,
        status=RoleGrant.Status.PENDING,
    )
    _check_role_grant_details(grant)
    pending = find_pending_role_grant(grant)
    if pending is not None:
        raise _duplicate_pending(pending)
    _refuse_change_that_changes_nothing(grant)
    grant.full_clean(validate_constraints=False)
    try:
        # A twin request committed a moment ago: the partial unique
        # constraints refuse it, in words here rather than as an error page.
        with transaction.atomic():
            grant.save()
    except IntegrityError:
        raise _duplicate_pending(find_pending_role_grant(grant)) from None
    return grant


def _check_decider(grant: RoleGrant, actor: User) -> None:
    _check_may_manage_role_grants(actor)
    if actor.pk == grant.requested_by_id:
        raise PermissionDenied(
            _("You asked for this change, so another registry admin must decide it.")
        )
    if grant.user_id is not None and actor.pk == grant.user_id:
        raise PermissionDenied(
            _("This change is about you, so another registry admin must decide it.")
        )


def _locked_pending_grant(grant: RoleGrant) -> RoleGrant:
    grant = (
        RoleGrant.objects.select_for_update(of=("self",))
        .select_related("user", "organization")
        .get(pk=grant.pk)
    )
    if grant.status != RoleGrant.Status.PENDING:
        raise ValidationError(
            _("This request was already %(status)s; it cannot be decided again.")
            % {"status": grant.get_status_display().lower()},
            code="role_grant_decided",
        )
    return grant


def _record_decision(grant: RoleGrant, actor: User, status: str, note: str) -> None:
    """Compare-and-set from pending: of two deciders at once, one wins."""
    now = timezone.now()
    decided = RoleGrant.objects.filter(
        pk=grant.pk, status=RoleGrant.Status.PENDING
    ).update(
        status=status,
        user=grant.user,
        decided_by=actor,
        decided_at=now,
        decision_note=note,
    )
    if not decided:
        raise ValidationError(
            _("Someone else decided this request a moment ago."),
            code="role_grant_decided",
        )
    grant.status, grant.decided_by, grant.decided_at = status, actor, now
    grant.decision_note = note


def _create_user(grant: RoleGrant) -> User:
    user = User(
        username=grant.username,
        first_name=grant.first_name,
        last_name=grant.last_name,
        email=grant.email,
    )
    # Until the new user follows the link and chooses one.
    user.set_unusable_password()
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def approve_role_grant(
    *, grant: RoleGrant, approver: User, note: str = ""
) -> RoleGrant:
    """Decide a pending grant yes and apply it, in one transaction: the role,
    the membership, or the new user with both."""
    _check_may_manage_role_grants(approver)
    grant = _locked_pending_grant(grant)
    _check_decider(grant, approver)
    _refuse_change_that_changes_nothing(grant)
    kind = grant.kind
    if kind == RoleGrant.Kind.CREATE_USER:
        grant.user = _create_user(grant)
    if kind in (RoleGrant.Kind.GRANT_ROLE, RoleGrant.Kind.CREATE_USER):
        grant_role(user=grant.user, role=Role(grant.role))
    elif kind == RoleGrant.Kind.REVOKE_ROLE:
        revoke_role(user=grant.user, role=Role(grant.role))
    if kind in (RoleGrant.Kind.ADD_MEMBERSHIP, RoleGrant.Kind.CREATE_USER):
        add_member(user=grant.user, organization=grant.organization)
    elif kind == RoleGrant.Kind.REMOVE_MEMBERSHIP:
        remove_member(user=grant.user, organization=grant.organization)
    _record_decision(grant, approver, RoleGrant.Status.APPROVED, note.strip())
    return grant


@transaction.atomic
def reject_role_grant(*, grant: RoleGrant, approver: User, note: str) -> RoleGrant:
    """Decide a pending grant no, with a note the requester reads; nothing else
    changes."""
    _check_may_manage_role_grants(approver)
    if not note.strip():
        raise field_error(
            "note",
            _("Give a reason for the rejection: the requester will see it."),
            code="role_grant_note",
        )
    grant = _locked_pending_grant(grant)
    _check_decider(grant, approver)
    _record_decision(grant, approver, RoleGrant.Status.REJECTED, note.strip())
    return grant


def send_password_setup_link(*, user: User, url: str) -> bool:
    """E-mail a new user the link to choose their password; whether it went.
    A registry without mail set up still works: the approver hands the link
    over."""
    subject = _("Your account at the Bijie carbon-sink registry")
    body = _(
        "An account with the username %(username)s has been created for you. "
        "Choose your password here (the link works once and expires in "
        "%(days)d days):\n\n%(url)s\n"
    ) % {
        "username": user.get_username(),
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        "url": url,
    }
    return bool(send_mail(subject, body, None, [user.email], fail_silently=True))


# Alerts: someone is told ----------------------------------------------------------

# Pages and /healthz check the heartbeats at most this often, across every
# process that shares the cache.
HEARTBEAT_CHECK_EVERY_SECONDS = 60
_HEARTBEAT_CHECK_CACHE_KEY = "registry:heartbeat-check"
_HEARTBEAT_MISSING_CACHE_KEY = "registry:heartbeat-missing:%s"
# Users keep no language preference: alert e-mails carry both languages.
ALERT_EMAIL_LANGUAGES = ("zh-hans", "en")
SILENT_ALERT_KINDS = {
    Heartbeat.Component.WORKER: Alert.Kind.WORKER_SILENT,
    Heartbeat.Component.BEAT: Alert.Kind.BEAT_SILENT,
}


@transaction.atomic
def raise_alert(*, kind: str, key: str, params: dict | None = None) -> Alert:
    """Record an open alert, log it at ERROR and, once the caller's transaction
    commits, e-mail every active registry admin. While an alert of this kind
    and key is open, raising it again returns that one: no second row, log
    line or e-mail. ``params`` are JSON values its message is rendered from
    (see ``Alert.message``)."""
    open_alert = find_open_alert(kind=kind, key=key)
    if open_alert is not None:
        return open_alert
    alert = Alert(kind=kind, key=key, params={} if params is None else params)
    alert.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        # Raised by another process a moment ago: that one is the alert.
        twin = find_open_alert(kind=kind, key=key)
        if twin is None:
            raise
        return twin
    with translation.override("en"):
        logger.error("Alert #%s %s (%s): %s", alert.pk, kind, key, alert.message)
    transaction.on_commit(lambda: email_alert(alert_id=alert.pk), robust=True)
    return alert


def _instant(value: datetime) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i:s O")


def alert_email(alert: Alert) -> tuple[str, str]:
    """The subject and body of an alert's e-mail, in Chinese then English."""
    subjects, bodies = [], []
    for language in ALERT_EMAIL_LANGUAGES:
        with translation.override(language):
            subjects.append(
                _("Carbon-sink registry alert: %(kind)s")
                % {"kind": alert.get_kind_display()}
            )
            bodies.append(
                _(
                    "%(message)s\n\nRaised at %(raised_at)s. It stays on every "
                    "registry admin's pages until one of you acknowledges it."
                )
                % {"message": alert.message, "raised_at": _instant(alert.raised_at)}
            )
    return " / ".join(subjects), "\n\n----\n\n".join(bodies) + "\n"


def email_alert(*, alert_id: int) -> int:
    """E-mail the alert to every active registry admin, one message each (no
    one sees the others' addresses); how many went. A mail failure is logged
    at ERROR, never raised: the alert is on the admins' pages anyway."""
    try:
        alert = Alert.objects.get(pk=alert_id)
        recipients = list_alert_recipients()
        if not recipients:
            logger.error(
                "Alert #%s: no active registry admin has an e-mail address; "
                "nobody was e-mailed.",
                alert_id,
            )
            return 0
        subject, body = alert_email(alert)
        return get_connection().send_messages(
            [EmailMessage(subject, body, None, [address]) for address in recipients]
        )
    except Exception:
        # Any backend's failure (SMTP, network, a bad setting) must not undo or
        # interrupt the work whose commit raised the alert.
        logger.exception(
            "Alert #%s could not be e-mailed to the registry admins.", alert_id
        )
        return 0


@transaction.atomic
def acknowledge_alert(*, actor: User, alert: Alert) -> Alert:
    """A registry admin has seen the alert: it leaves every admin's pages. Once
    only; the row stays, with who acknowledged it and when."""
    if not may_see_alerts(actor):
        raise NotPermitted(
            _("Only a registry admin can acknowledge an alert."),
            code="alert_not_permitted",
        )
    now = timezone.now()
    # Compare-and-set: of two admins acknowledging at once, one does it.
    acknowledged = Alert.objects.filter(
        pk=alert.pk, acknowledged_at__isnull=True
    ).update(acknowledged_at=now, acknowledged_by=actor)
    if not acknowledged:
        earlier = Alert.objects.select_related("acknowledged_by").get(pk=alert.pk)
        raise StateConflict(
            _("%(user)s already acknowledged this alert at %(at)s.")
            % {
                "user": earlier.acknowledged_by.get_username(),
                "at": _instant(earlier.acknowledged_at),
            },
            code="alert_acknowledged",
        )
    alert.acknowledged_at, alert.acknowledged_by = now, actor
    logger.info("Alert #%s acknowledged by %s.", alert.pk, actor.get_username())
    return alert


# Heartbeats: the worker and beat say they are alive --------------------------------


def record_heartbeat(
    *, component: str, hostname: str = "", now: datetime | None = None
) -> Heartbeat:
    """``component`` (worker or beat) is alive now; the last writer wins."""
    heartbeat, _created = Heartbeat.objects.update_or_create(
        component=Heartbeat.Component(component),
        defaults={"beat_at": now or timezone.now(), "hostname": hostname[:255]},
    )
    return heartbeat


def heartbeats_expected() -> bool:
    """Eager mode (no Redis) runs tasks in the web process: there is no worker
    or beat to hear from."""
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _missing_long_enough(component: str, now: datetime) -> bool:
    """A component never heard from is given the stale period from when a check
    first noticed, so a fresh deployment's first minutes raise nothing."""
    first_noticed = cache.get_or_set(
        _HEARTBEAT_MISSING_CACHE_KEY % component, now, timeout=None
    )
    return now - first_noticed >= timedelta(
        seconds=settings.HEARTBEAT_STALE_AFTER_SECONDS
    )


def check_heartbeats(*, now: datetime | None = None) -> list[Alert]:
    """Raise WORKER_SILENT or BEAT_SILENT for each silent component; the new
    alerts. One alert per outage: its key is the last heartbeat, so an
    acknowledged alert comes back only after the component has beaten again
    and gone silent again."""
    if not heartbeats_expected():
        return []
    now = now or timezone.now()
    raised = []
    for status in list_heartbeat_statuses(now=now):
        if not status.silent:
            continue
        if status.last_heartbeat is None and not _missing_long_enough(
            status.component, now
        ):
            continue
        since = status.last_heartbeat.isoformat() if status.last_heartbeat else None
        kind = SILENT_ALERT_KINDS[status.component]
        key = f"{status.component}:{since or 'never'}"
        if alert_was_raised(kind=kind, key=key):
            continue
        raised.append(raise_alert(kind=kind, key=key, params={"since": since}))
    return raised


def check_heartbeats_if_due() -> list[Alert]:
    """``check_heartbeats`` at most once every HEARTBEAT_CHECK_EVERY_SECONDS
    across the processes sharing the cache. Registry admins' pages and
    /healthz call it, so a silent worker or beat is noticed even when only the
    web process is alive."""
    if not heartbeats_expected():
        return []
    try:
        due = cache.add(
            _HEARTBEAT_CHECK_CACHE_KEY, True, timeout=HEARTBEAT_CHECK_EVERY_SECONDS
        )
    except Exception:
        # The cache is Redis, which may be down: pages keep working, and
        # /healthz reports the broker.
        logger.warning("Heartbeat check skipped: the cache is unavailable.")
        return []
    if not due:
        return []
    return check_heartbeats()
