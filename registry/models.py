"""Who and where: users, the organizations they act for, accounts and projects
(credit batches are ``trading.CreditBatch``).

A user acts for one or more organizations through ``Membership``; their roles are
Django groups (``registry.roles``). Object permissions follow the organization.
"""

from django.contrib.auth.models import AbstractUser
from django.contrib.gis.db import models as gis_models
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from registry import uscc
from registry.roles import Role


def validate_uscc(value: str) -> None:
    try:
        uscc.normalize(value)
    except uscc.InvalidCode as error:
        messages = {
            "length": _("A unified social credit code has exactly 18 characters."),
            "character": _(
                "A unified social credit code uses only digits and the capital "
                "letters A-Y except I, O, S, V and Z."
            ),
            "check": _(
                "The last character of this unified social credit code does not "
                "match its check digit: please check the code for a typing error."
            ),
        }
        raise ValidationError(
            messages[error.reason], code=f"uscc_{error.reason}"
        ) from None


class BilingualNameMixin:
    """``display_name``: ``name_zh`` on Chinese pages, ``name_en`` otherwise."""

    @property
    def display_name(self) -> str:
        language = get_language() or ""
        return self.name_zh if language.startswith("zh") else self.name_en


class User(AbstractUser):
    """A person who signs in. Roles are groups; organizations via Membership."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Organization(BilingualNameMixin, models.Model):
    """A legal entity that takes part in the registry."""

    class Kind(models.TextChoices):
        FORESTRY_BUREAU = "forestry_bureau", _("Forestry bureau")
        PROJECT_OWNER = "project_owner", _("Project owner")
        VERIFIER = "verifier", _("Verification body")
        BUYER = "buyer", _("Buyer")
        REGISTRY_OPERATOR = "registry_operator", _("Registry operator")

    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    uscc = models.CharField(
        _("unified social credit code"),
        max_length=18,
        unique=True,
        validators=[validate_uscc],
        help_text=_("18 characters, GB 32100-2015, with its check digit."),
    )
    is_demo = models.BooleanField(_("demo data"), default=False)
    members = models.ManyToManyField(
        User, through="Membership", related_name="organizations", blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uscc__regex=r"^[0-9A-HJ-NP-RTUW-Y]{18}$"),
                name="organization_uscc_format",
            )
        ]

    def __str__(self) -> str:
        return self.display_name


class Membership(models.Model):
    """A user acting for an organization."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships"
    )
    created_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class Account(models.Model):
    """Where credits are held. Every organization has a holding account; the
    registry operator also keeps the buffer-pool, retirement and cancellation
    accounts (one each in the whole registry)."""

    class Kind(models.TextChoices):
        HOLDING = "holding", _("Holding")
        BUFFER_POOL = "buffer_pool", _("Buffer pool")
        RETIREMENT = "retirement", _("Retirement")
        CANCELLATION = "cancellation", _("Cancellation")

    REGISTRY_KINDS = (Kind.BUFFER_POOL, Kind.RETIREMENT, Kind.CANCELLATION)
    NUMBER_PREFIX = {
        Kind.HOLDING: "H",
        Kind.BUFFER_POOL: "B",
        Kind.RETIREMENT: "R",
        Kind.CANCELLATION: "C",
    }

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="accounts"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # Assigned from the primary key right after the first save (see services).
    number = models.CharField(  # noqa: DJ001 (NULL until assigned; unique)
        _("account number"), max_length=20, unique=True, null=True, editable=False
    )
    is_public = models.BooleanField(
        _("holder name public"),
        default=False,
        help_text=_("Show the holder's name on public pages."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["number"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind"], name="account_one_per_kind"
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(
                    kind__in=["buffer_pool", "retirement", "cancellation"]
                ),
                name="account_registry_kinds_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} · {self.organization}"


class AdministrativeDivision(BilingualNameMixin, models.Model):
    """Bijie City and its county-level divisions (from data/bijie/divisions.geojson)."""

    class Level(models.TextChoices):
        CITY = "city", _("City")
        COUNTY = "county", _("County")

    adcode = models.CharField(_("division code"), max_length=6, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=80)
    level = models.CharField(_("level"), max_length=8, choices=Level.choices)
    boundary = gis_models.MultiPolygonField(_("boundary"), srid=4326)

    class Meta:
        ordering = ["adcode"]
        verbose_name = _("administrative division")
        verbose_name_plural = _("administrative divisions")

    def __str__(self) -> str:
        return self.display_name


class Project(BilingualNameMixin, models.Model):
    """A carbon-sink project: an owner's land inside one county, with a boundary.

    Lifecycle: draft -> submitted -> registered -> suspended / closed; a submitted
    project may be returned to draft. Changes go through ``registry.services`` and
    each one is recorded in ``ProjectStatusChange``.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        REGISTERED = "registered", _("Registered")
        SUSPENDED = "suspended", _("Suspended")
        CLOSED = "closed", _("Closed")

    class Ecosystem(models.TextChoices):
        FOREST = "forest", _("Forest")
        FARMLAND = "farmland", _("Farmland")
        GRASSLAND = "grassland", _("Grassland")
        WETLAND = "wetland", _("Wetland")
        MIXED = "mixed", _("Mixed")

    # Boundaries of these states take part in the double-counting check.
    LIVE_STATUSES = (Status.SUBMITTED, Status.REGISTERED)
    # Lifecycle steps: the states each may start from, and the state it ends in.
    # "submit" is the owner's; every other step is a registry admin's.
    TRANSITIONS = {
        "submit": ((Status.DRAFT,), Status.SUBMITTED),
        "approve": ((Status.SUBMITTED,), Status.REGISTERED),
        "return": ((Status.SUBMITTED,), Status.DRAFT),
        "suspend": ((Status.REGISTERED,), Status.SUSPENDED),
        "reinstate": ((Status.SUSPENDED,), Status.REGISTERED),
        "close": ((Status.REGISTERED, Status.SUSPENDED), Status.CLOSED),
    }
    PUBLIC_STATUSES = (
        Status.SUBMITTED,
        Status.REGISTERED,
        Status.SUSPENDED,
        Status.CLOSED,
    )

    # Assigned from the primary key right after the first save (see services).
    code = models.CharField(  # noqa: DJ001 (NULL until assigned; unique)
        _("project code"), max_length=20, unique=True, null=True, editable=False
    )
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    owner = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="projects",
        verbose_name=_("owner"),
    )
    county = models.ForeignKey(
        AdministrativeDivision,
        on_delete=models.PROTECT,
        related_name="projects",
        limit_choices_to={"level": "county"},
        verbose_name=_("county"),
    )
    boundary = gis_models.MultiPolygonField(_("boundary"), srid=4326)
    area_ha = models.DecimalField(
        _("area (ha)"),
        max_digits=14,
        decimal_places=4,
        help_text=_("On the WGS84 ellipsoid."),
    )
    boundary_source_srid = models.PositiveIntegerField(_("boundary input CRS (EPSG)"))
    # The boundary's bounding box, indexed: a cheap first filter for the
    # double-counting check on every database.
    bbox_west = models.FloatField(editable=False)
    bbox_south = models.FloatField(editable=False)
    bbox_east = models.FloatField(editable=False)
    bbox_north = models.FloatField(editable=False)
    crediting_start = models.DateField(_("crediting period start"))
    crediting_end = models.DateField(_("crediting period end"))
    ecosystem_focus = models.CharField(
        _("ecosystem focus"), max_length=16, choices=Ecosystem.choices
    )
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=Status.choices,
        default=Status.DRAFT,
        editable=False,
    )
    is_demo = models.BooleanField(_("demo data"), default=False)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="projects_created"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        indexes = [
            models.Index(fields=["status", "bbox_west", "bbox_east"]),
            models.Index(fields=["county", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(crediting_end__gt=models.F("crediting_start")),
                name="project_crediting_period_order",
            ),
            models.CheckConstraint(
                condition=models.Q(area_ha__gt=0), name="project_area_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.display_name}"

    @property
    def is_public(self) -> bool:
        return self.status in self.PUBLIC_STATUSES


class ProjectDocument(models.Model):
    """A file behind a project: its design document or proof of land tenure."""

    class Kind(models.TextChoices):
        DESIGN_DOCUMENT = "design_document", _("Project design document")
        LAND_TENURE = "land_tenure", _("Land-tenure proof")

    # Design documents are public, as in other registries; tenure proofs name
    # households and stay with the owner, verifiers and registry admins.
    PUBLIC_KINDS = (Kind.DESIGN_DOCUMENT,)

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="documents"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="project-documents/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="project_documents"
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        ordering = ["kind", "-uploaded_at"]
        verbose_name = _("project document")
        verbose_name_plural = _("project documents")

    def __str__(self) -> str:
        return self.original_name


class ProjectStatusChange(models.Model):
    """Who moved a project from one state to another, when and why."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(
        _("from"), max_length=16, choices=Project.Status.choices, blank=True
    )
    to_status = models.CharField(_("to"), max_length=16, choices=Project.Status.choices)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="project_status_changes"
    )
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("project status change")
        verbose_name_plural = _("project status changes")

    def __str__(self) -> str:
        return f"{self.project_id}: {self.from_status or '-'} -> {self.to_status}"


class ProjectEvent(models.Model):
    """A step in a project's history other than a change of status: its
    estimates' verification and the credits issued for it. Written by the apps
    that take those steps (through ``registry.services.record_project_event``),
    so the project page tells the whole story without importing them."""

    class Kind(models.TextChoices):
        VERIFICATION_SUBMITTED = (
            "verification_submitted",
            _("Submitted for verification"),
        )
        VERIFICATION_APPROVED = "verification_approved", _("Verification approved")
        VERIFICATION_REJECTED = "verification_rejected", _("Verification rejected")
        CREDITS_ISSUED = "credits_issued", _("Credits issued")

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="project_events"
    )
    # Language-neutral pointer to what the step was about (numbers, dates, serials).
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("project event")
        verbose_name_plural = _("project events")

    def __str__(self) -> str:
        return f"{self.project_id}: {self.kind}"


class RoleGrant(models.Model):
    """A request to change who may do what: give or take away a role, add a user
    to an organization or remove them, or create a user with a role and an
    organization. A second registry admin decides it (``registry.services``); an
    approved grant is applied in the same transaction, so every role and
    membership since this model exists has a row that says who asked, who
    approved, when and why. Rows are never deleted."""

    class Kind(models.TextChoices):
        GRANT_ROLE = "grant_role", _("Grant a role")
        REVOKE_ROLE = "revoke_role", _("Revoke a role")
        ADD_MEMBERSHIP = "add_membership", _("Add to an organization")
        REMOVE_MEMBERSHIP = "remove_membership", _("Remove from an organization")
        CREATE_USER = "create_user", _("Create a user")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    ROLE_KINDS = (Kind.GRANT_ROLE, Kind.REVOKE_ROLE)
    MEMBERSHIP_KINDS = (Kind.ADD_MEMBERSHIP, Kind.REMOVE_MEMBERSHIP)

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # The person the change is about; empty until a "create a user" grant is
    # approved and the user exists.
    user = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="role_grants",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, blank=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="role_grants",
        verbose_name=_("organization"),
    )
    # The new user's details ("create a user" only). The user chooses their own
    # password through a one-time link; the requester never sets it.
    username = models.CharField(_("username"), max_length=150, blank=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True)
    reason = models.TextField(_("reason"))
    requested_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        related_name="role_grants_requested",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    decided_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="role_grants_decided",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("role grant")
        verbose_name_plural = _("role grants")
        indexes = [models.Index(fields=["status", "requested_at"])]
        constraints = [
            # Maker-checker in the database too: nobody decides their own
            # request, nor a change about themselves.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by")),
                name="rolegrant_decider_not_requester",
            ),
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | models.Q(user__isnull=True)
                | ~models.Q(decided_by=models.F("user")),
                name="rolegrant_decider_not_target",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="pending", decided_by__isnull=True)
                    & models.Q(decided_at__isnull=True)
                )
                | (
                    models.Q(status__in=["approved", "rejected"])
                    & models.Q(decided_by__isnull=False, decided_at__isnull=False)
                ),
                name="rolegrant_decision_complete",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="rolegrant_reason_given"
            ),
            # What each kind needs.
            models.CheckConstraint(
                condition=~models.Q(kind__in=["grant_role", "revoke_role"])
                | (models.Q(user__isnull=False) & ~models.Q(role="")),
                name="rolegrant_role_change_names_user_and_role",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=["add_membership", "remove_membership"])
                | models.Q(user__isnull=False, organization__isnull=False),
                name="rolegrant_membership_names_user_and_organization",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="create_user")
                | (
                    ~models.Q(username="")
                    & ~models.Q(email="")
                    & ~models.Q(role="")
                    & models.Q(organization__isnull=False)
                ),
                name="rolegrant_new_user_complete",
            ),
            # One pending request per change (the services say so first, in
            # words; these stop two requests made at the same moment).
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=models.Q(
                    status="pending", kind__in=["grant_role", "revoke_role"]
                ),
                name="rolegrant_one_pending_role_change",
            ),
            models.UniqueConstraint(
                fields=["user", "organization"],
                condition=models.Q(
                    status="pending",
                    kind__in=["add_membership", "remove_membership"],
                ),
                name="rolegrant_one_pending_membership_change",
            ),
            models.UniqueConstraint(
                Lower("username"),
                condition=models.Q(status="pending", kind="create_user"),
                name="rolegrant_one_pending_new_user",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"

    @property
    def subject_name(self) -> str:
        """Whom the change is about: the user, or the new user's username."""
        return self.user.get_username() if self.user_id else self.username


class Alert(models.Model):
    """Something a registry admin must hear about: a failed ledger check, a run
    the sweep failed, a silent worker or beat. Raised through
    ``registry.services.raise_alert`` (logged at ERROR, e-mailed to the registry
    admins) and shown on their pages until one of them acknowledges it. At most
    one open alert per (kind, key); rows are kept after acknowledgement."""

    class Kind(models.TextChoices):
        LEDGER_CHECK_FAILED = "ledger_check_failed", _("Ledger check failed")
        RUN_FAILED_BY_SWEEP = "run_failed_by_sweep", _("Estimation run failed")
        WORKER_SILENT = "worker_silent", _("Celery worker silent")
        BEAT_SILENT = "beat_silent", _("Celery beat silent")

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    # Language-neutral: what the alert is about (e.g. "run:12"), so raising
    # the same alert again while it is open does not repeat it.
    key = models.CharField(_("key"), max_length=200)
    # JSON values the message is rendered from, in the reader's language.
    params = models.JSONField(_("details"), default=dict, blank=True)
    raised_at = models.DateTimeField(_("raised at"), default=timezone.now)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts_acknowledged",
        verbose_name=_("acknowledged by"),
    )

    class Meta:
        ordering = ["-raised_at", "-pk"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"],
                condition=models.Q(acknowledged_at__isnull=True),
                name="alert_one_open_per_kind_and_key",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    acknowledged_at__isnull=True, acknowledged_by__isnull=True
                )
                | models.Q(
                    acknowledged_at__isnull=False, acknowledged_by__isnull=False
                ),
                name="alert_acknowledgement_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.key})"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def message(self) -> str:
        """What happened, in the active language, from ``params``."""
        params = self.params if isinstance(self.params, dict) else {}
        if self.kind == self.Kind.LEDGER_CHECK_FAILED:
            count = params.get("violations")
            if not isinstance(count, int):
                return gettext("The nightly ledger check found violations.")
            # No plural forms: the catalogue has none, and Chinese needs none.
            return gettext(
                "Violations found by the nightly ledger check: %(count)d."
            ) % {"count": count}
        if self.kind == self.Kind.RUN_FAILED_BY_SWEEP:
            reason = params.get("reason") or ""
            reason = str(_SWEEP_REASONS.get(reason, reason)) or gettext(
                "no reason given"
            )
            return gettext(
                "Estimation run #%(run)s was failed by the sweep: %(reason)s."
            ) % {"run": params.get("run", "?"), "reason": reason}
        since = _format_instant(params.get("since"))
        if self.kind == self.Kind.WORKER_SILENT:
            if since is None:
                return gettext("No Celery worker has ever sent a heartbeat.")
            return gettext("The Celery worker has been silent since %(since)s.") % {
                "since": since
            }
        if self.kind == self.Kind.BEAT_SILENT:
            if since is None:
                return gettext("Celery beat has never sent a heartbeat.")
            return gettext("Celery beat has been silent since %(since)s.") % {
                "since": since
            }
        return str(self)


# Reasons the estimation sweep gives (its error codes), said in words here
# because the registry may not import estimation.
_SWEEP_REASONS = {
    "worker_lost": _("its worker stopped twice, so it was not re-queued again"),
}


def _format_instant(value) -> str | None:
    """An ISO 8601 instant as local (Beijing) time, or None if absent."""
    if not isinstance(value, str):
        return None
    instant = parse_datetime(value)
    if instant is None:
        return value
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant, timezone.get_fixed_timezone(0))
    return date_format(timezone.localtime(instant), "Y-m-d H:i:s O")


class Heartbeat(models.Model):
    """The last sign of life of the Celery worker and of beat (one row each,
    whichever process wrote last). Written every HEARTBEAT_INTERVAL_SECONDS
    (registry/heartbeats.py); older than HEARTBEAT_STALE_AFTER_SECONDS means
    the component is silent."""

    class Component(models.TextChoices):
        WORKER = "worker", _("Celery worker")
        BEAT = "beat", _("Celery beat")

    component = models.CharField(
        _("component"), max_length=16, choices=Component.choices, unique=True
    )
    beat_at = models.DateTimeField(_("last heartbeat"))
    hostname = models.CharField(_("host"), max_length=255, blank=True)

    class Meta:
        ordering = ["component"]
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.component} @ {self.beat_at.isoformat()}"
