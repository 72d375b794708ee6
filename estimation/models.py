"""How much: land-cover datasets, class schemes, methodologies and their
coefficients, and estimation runs with their per-ecosystem results.

Quantities: areas in ha and sinks in t as Decimal; a run stores a fingerprint of
every input so that it can be reproduced exactly.
"""

from django.contrib.gis.db import models as gis_models
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common import quantities
from common.quantities import percent_from_share
from estimation.errors import RUN_FAILURE_MESSAGES
from registry.models import (
    BilingualNameMixin,
    Organization,
    Project,
    User,
)
from trading.models import CreditBatch


class Ecosystem(models.TextChoices):
    FOREST = "forest", _("Forest")
    FARMLAND = "farmland", _("Farmland")
    GRASSLAND = "grassland", _("Grassland")
    WETLAND = "wetland", _("Wetland")
    WATER = "water", _("Water")
    DESERT = "desert", _("Desert and barren land")
    BUILT_UP = "built_up", _("Built-up land")
    OTHER = "other", _("Other")


class BilingualName(BilingualNameMixin, models.Model):
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.display_name


class ClassScheme(BilingualName):
    """How one land-cover product's class codes map to ecosystems. Data, not code:
    seeded for the common products and editable by registry admins."""

    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    product = models.CharField(_("product"), max_length=100)
    # Codes that mean "no data" in this product, besides the raster's own nodata.
    nodata_codes = models.JSONField(_("no-data codes"), default=list, blank=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("class scheme")
        verbose_name_plural = _("class schemes")


class ClassMapping(models.Model):
    scheme = models.ForeignKey(
        ClassScheme, on_delete=models.CASCADE, related_name="mappings"
    )
    code = models.CharField(_("class code"), max_length=16)
    label = models.CharField(_("class name"), max_length=200)
    ecosystem = models.CharField(
        _("ecosystem"), max_length=16, choices=Ecosystem.choices
    )

    class Meta:
        ordering = ["scheme", "code"]
        verbose_name = _("class mapping")
        verbose_name_plural = _("class mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "code"], name="class_mapping_unique_code"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scheme.slug}:{self.code} -> {self.ecosystem}"


class Methodology(BilingualName):
    """A versioned set of per-ecosystem coefficients. Once a run has used a
    version it is frozen; a change makes the next version."""

    class Kind(models.TextChoices):
        FLUX = "flux", _("Coefficient (annual flux) method")
        STOCK_DIFFERENCE = "stock_difference", _("Stock difference (InVEST pools)")

    slug = models.SlugField(_("slug"), max_length=60)
    version = models.PositiveIntegerField(_("version"), default=1)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    citation = models.TextField(_("citation"))
    is_default = models.BooleanField(_("default"), default=False)
    buffer_share = models.DecimalField(
        _("buffer share"),
        max_digits=5,
        decimal_places=4,
        default="0.1000",
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Share of issued credits withheld in the buffer pool."),
    )
    uncertainty_deduction = models.DecimalField(
        _("uncertainty deduction"),
        max_digits=5,
        decimal_places=4,
        default="0.0000",
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Share deducted from the estimate before issuance."),
    )
    frozen_at = models.DateTimeField(_("frozen at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["slug", "-version"]
        verbose_name = _("methodology")
        verbose_name_plural = _("methodologies")
        constraints = [
            models.UniqueConstraint(
                fields=["slug", "version"], name="methodology_unique_version"
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="methodology_one_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} v{self.version}"

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class Coefficient(models.Model):
    """One ecosystem's figure in a methodology, with its unit, kind, sign and
    source, so no two conventions are ever mixed silently."""

    class Unit(models.TextChoices):
        T_C = "t_c", _("t C")
        T_CO2 = "t_co2", _("t CO2")

    class Basis(models.TextChoices):
        FLUX = "per_ha_year", _("per ha per year")
        STOCK = "stock_per_ha", _("stock per ha")

    class Sign(models.TextChoices):
        SINK_POSITIVE = "sink_positive", _("sink positive")
        EMISSION_POSITIVE = "emission_positive", _("emission positive")

    class Pool(models.TextChoices):
        NONE = "", _("all (flux)")
        ABOVE = "above", _("above-ground biomass")
        BELOW = "below", _("below-ground biomass")
        SOIL = "soil", _("soil organic carbon")
        DEAD = "dead", _("dead organic matter")

    class Status(models.TextChoices):
        VERIFIED = "verified", _("verified in the source")
        DERIVED = "derived", _("derived from the source")
        UNVERIFIED = "unverified", _("unverified")

    methodology = models.ForeignKey(
        Methodology, on_delete=models.CASCADE, related_name="coefficients"
    )
    ecosystem = models.CharField(
        _("ecosystem"), max_length=16, choices=Ecosystem.choices
    )
    pool = models.CharField(_("pool"), max_length=8, choices=Pool.choices, blank=True)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=6)
    unit = models.CharField(_("unit"), max_length=8, choices=Unit.choices)
    basis = models.CharField(_("basis"), max_length=16, choices=Basis.choices)
    sign = models.CharField(
        _("sign convention"),
        max_length=20,
        choices=Sign.choices,
        default=Sign.SINK_POSITIVE,
    )
    citation = models.TextField(_("citation"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)

    class Meta:
        ordering = ["methodology", "ecosystem", "pool"]
        verbose_name = _("coefficient")
        verbose_name_plural = _("coefficients")
        constraints = [
            models.UniqueConstraint(
                fields=["methodology", "ecosystem", "pool"],
                name="coefficient_unique_per_pool",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ecosystem} {self.value} {self.unit}/{self.basis}"


class LandCoverDataset(BilingualName):
    """An uploaded land-cover map: a GeoTIFF of class codes, or land-use polygons
    with a class-code field."""

    class Product(models.TextChoices):
        CLCD = "clcd", "CLCD"
        ESA_WORLDCOVER = "esa-worldcover", "ESA WorldCover"
        GLOBELAND30 = "globeland30", "GlobeLand30"
        MODIS_IGBP = "modis-igbp", "MODIS IGBP"
        TNLS = "tnls", _("Third National Land Survey")
        CUSTOM = "custom", _("Custom")

    class Kind(models.TextChoices):
        RASTER = "raster", _("Raster (GeoTIFF)")
        VECTOR = "vector", _("Land-use polygons")

    class FileStatus(models.TextChoices):
        UNCHECKED = "unchecked", _("not checked yet")
        MATCHES = "matches", _("matches the upload")
        DIFFERS = "differs", _("differs from the upload")
        MISSING = "missing", _("missing")

    product = models.CharField(_("product"), max_length=20, choices=Product.choices)
    year = models.PositiveIntegerField(
        _("year"), validators=[MinValueValidator(1970), MaxValueValidator(2100)]
    )
    scheme = models.ForeignKey(
        ClassScheme,
        on_delete=models.PROTECT,
        related_name="datasets",
        verbose_name=_("class scheme"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="landcover/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    class_field = models.CharField(_("class-code field"), max_length=64, blank=True)
    crs = models.TextField(_("coordinate system"), blank=True)
    description = models.JSONField(_("properties"), default=dict, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="landcover_datasets"
    )
    uploaded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="landcover_datasets"
    )
    is_demo = models.BooleanField(_("demo data"), default=False)
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    # The stored file re-hashed by a task (never in a request): pages show this.
    file_status = models.CharField(
        _("file check"),
        max_length=10,
        choices=FileStatus.choices,
        default=FileStatus.UNCHECKED,
    )
    file_checked_at = models.DateTimeField(_("file checked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("land-cover dataset")
        verbose_name_plural = _("land-cover datasets")


class EstimationRun(models.Model):
    """One estimate of a boundary's sink from a land-cover map and a methodology
    version, over a monitoring period, at a carbon price."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", pgettext_lazy("estimation run", "Cancelled")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name="estimation_runs",
        null=True,
        blank=True,
        verbose_name=_("project"),
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="estimation_runs"
    )
    # The boundary as it was when the run was made (a project's may change later).
    boundary = gis_models.MultiPolygonField(_("boundary"), srid=4326)
    dataset = models.ForeignKey(
        LandCoverDataset,
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("land cover"),
    )
    baseline_dataset = models.ForeignKey(
        LandCoverDataset,
        on_delete=models.PROTECT,
        related_name="baseline_runs",
        null=True,
        blank=True,
        verbose_name=_("baseline land cover"),
    )
    methodology = models.ForeignKey(
        Methodology,
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("methodology"),
    )
    period_start = models.DateField(_("monitoring period start"))
    period_end = models.DateField(_("monitoring period end"))
    price_cny_per_t_co2e = models.DecimalField(
        _("carbon price (CNY per t CO2e)"),
        max_digits=quantities.MAX_PRICE_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.QUEUED
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    fingerprint = models.CharField(_("input fingerprint"), max_length=64, blank=True)
    inputs = models.JSONField(_("inputs"), default=dict, blank=True)
    boundary_area_ha = models.DecimalField(
        _("boundary area (ha)"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    covered_area_ha = models.DecimalField(
        _("covered area (ha)"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    nodata_area_ha = models.DecimalField(
        _("no-data area (ha)"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    outside_area_ha = models.DecimalField(
        _("area outside the map (ha)"),
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
    )
    unmapped_codes = models.JSONField(
        _("unknown class codes (ha)"), default=dict, blank=True
    )
    # Land-use polygon runs: invalid patches repaired (make_valid) and measured.
    repaired_patches = models.PositiveIntegerField(
        _("invalid patches repaired"), null=True, blank=True
    )
    years = models.DecimalField(
        _("years"), max_digits=8, decimal_places=4, null=True, blank=True
    )
    total_t_c_per_year = models.DecimalField(
        max_digits=18, decimal_places=3, null=True, blank=True
    )
    total_t_co2e_per_year = models.DecimalField(
        max_digits=18, decimal_places=3, null=True, blank=True
    )
    total_t_co2e_period = models.DecimalField(
        max_digits=18, decimal_places=3, null=True, blank=True
    )
    total_value_cny_per_year = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True
    )
    total_value_cny_period = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="estimation_runs"
    )
    cancelled_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cancelled_estimation_runs",
        verbose_name=_("cancelled by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Outbox and liveness: when the run was last handed to the broker (a
    # periodic task re-sends queued runs no worker took), how many times a
    # worker started it (the attempt that owns it) and its worker's last sign
    # of life (the sweep re-queues or fails runs whose worker went silent).
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # A large run is measured in parts on several workers
    # (estimation.services.measurement.plan_parts); 0 parts: in one piece.
    parts_total = models.PositiveIntegerField(_("parts"), default=0)
    parts_done = models.PositiveIntegerField(_("parts measured"), default=0)
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="retries",
        verbose_name=_("retry of"),
    )
    # Drawn by the run's task once the results are stored.
    landcover_picture = models.FileField(
        _("land-cover picture"), upload_to="runs/%Y/%m/", blank=True
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("estimation run")
        verbose_name_plural = _("estimation runs")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")),
                name="run_period_order",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="run_progress_percent"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "heartbeat_at"], name="run_status_heartbeat"
            ),
            models.Index(fields=["status", "queued_at"], name="run_status_queued"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.project.code if self.project else ''}"

    @property
    def failure_reason(self) -> str:
        """Why the run failed, in the reader's language where the code is one
        of the run's own (the stored message is in the worker's language)."""
        known = RUN_FAILURE_MESSAGES.get(self.error_code)
        return str(known) if known is not None else self.error_message


class EcosystemResult(models.Model):
    """One row of a run's table: an ecosystem's area, sink and value."""

    run = models.ForeignKey(
        EstimationRun, on_delete=models.CASCADE, related_name="results"
    )
    ecosystem = models.CharField(
        _("ecosystem"), max_length=16, choices=Ecosystem.choices
    )
    rank = models.PositiveSmallIntegerField(_("rank"))
    area_ha = models.DecimalField(_("area (ha)"), max_digits=14, decimal_places=4)
    share = models.DecimalField(_("share"), max_digits=5, decimal_places=4)
    coefficient = models.DecimalField(
        _("coefficient"), max_digits=12, decimal_places=6, null=True
    )
    coefficient_unit = models.CharField(_("coefficient unit"), max_length=8, blank=True)
    sink_t_c_per_year = models.DecimalField(max_digits=18, decimal_places=3)
    sink_t_co2e_per_year = models.DecimalField(max_digits=18, decimal_places=3)
    sink_t_co2e_period = models.DecimalField(max_digits=18, decimal_places=3)
    value_cny_per_year = models.DecimalField(max_digits=20, decimal_places=2, null=True)

    class Meta:
        ordering = ["run", "rank"]
        verbose_name = _("ecosystem result")
        verbose_name_plural = _("ecosystem results")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "ecosystem"], name="result_unique_ecosystem"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.ecosystem}"


class SurveyCodeArea(models.Model):
    """A land-use polygon run's area of one second-level class code (三调 0301
    乔木林地, 0305 灌木林地, ...; suffixes such as the K of 0201K folded in),
    for bureau staff to check against their own survey statistics."""

    run = models.ForeignKey(
        EstimationRun, on_delete=models.CASCADE, related_name="code_areas"
    )
    code = models.CharField(_("class code"), max_length=16)
    name = models.CharField(_("class name"), max_length=200, blank=True)
    area_ha = models.DecimalField(_("area (ha)"), max_digits=14, decimal_places=4)

    class Meta:
        ordering = ["run", "code"]
        verbose_name = _("area by survey code")
        verbose_name_plural = _("areas by survey code")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "code"], name="survey_code_area_unique_code"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.code}"


class Verification(models.Model):
    """An independent verifier's check of one estimation run for a monitoring
    period, and, once approved, its issuance as a credit batch.

    submitted -> approved -> issued, or submitted -> rejected (final for this
    record: the submitter answers with a new verification that ``revises`` it).
    A run has at most one verification that is not rejected, so it is issued at
    most once.
    """

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Awaiting verification")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        ISSUED = "issued", _("Issued")

    OPEN_STATUSES = (Status.SUBMITTED, Status.APPROVED, Status.ISSUED)

    run = models.ForeignKey(
        EstimationRun,
        on_delete=models.PROTECT,
        related_name="verifications",
        verbose_name=_("estimation run"),
    )
    # The run's project, kept here so that periods are compared per project.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name="verifications",
        verbose_name=_("project"),
    )
    monitoring_start = models.DateField(_("monitoring period start"))
    monitoring_end = models.DateField(_("monitoring period end"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.SUBMITTED
    )
    revises = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="revisions",
        verbose_name=_("revises"),
    )
    note = models.TextField(_("submitter's note"), blank=True)
    submitted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="verifications_submitted"
    )
    submitted_at = models.DateTimeField(_("submitted at"), auto_now_add=True)

    verifier = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="verifications_decided",
        verbose_name=_("verifier"),
    )
    verification_body = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="verifications",
        verbose_name=_("verification body"),
    )
    reasons = models.TextField(_("verifier's findings"), blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # The run's input fingerprint as the verifier checked it; issuance re-checks it.
    fingerprint = models.CharField(_("input fingerprint"), max_length=64, blank=True)

    batch = models.OneToOneField(
        CreditBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="verification",
        verbose_name=_("credit batch"),
    )
    uncertainty_deduction = models.DecimalField(
        _("uncertainty deduction"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
    )
    buffer_share = models.DecimalField(
        _("buffer share"), max_digits=5, decimal_places=4, null=True, blank=True
    )
    buffer_share_reason = models.TextField(_("reason for the buffer share"), blank=True)
    issued_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="verifications_issued",
    )
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")
        indexes = [models.Index(fields=["project", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(monitoring_end__gte=models.F("monitoring_start")),
                name="verification_period_order",
            ),
            # A run is verified, and so issued, at most once at a time.
            models.UniqueConstraint(
                fields=["run"],
                condition=models.Q(status__in=["submitted", "approved", "issued"]),
                name="verification_one_open_per_run",
            ),
            models.CheckConstraint(
                condition=models.Q(status="submitted")
                | models.Q(verifier__isnull=False, decided_at__isnull=False),
                name="verification_decided_by_a_verifier",
            ),
            models.CheckConstraint(
                condition=models.Q(status="issued", batch__isnull=False)
                | (~models.Q(status="issued") & models.Q(batch__isnull=True)),
                name="verification_issued_has_batch",
            ),
            models.CheckConstraint(
                condition=models.Q(buffer_share__isnull=True)
                | models.Q(buffer_share__gte=0, buffer_share__lt=1),
                name="verification_buffer_share_range",
            ),
        ]

    def __str__(self) -> str:
        return f"V{self.pk} run #{self.run_id}"

    @property
    def buffer_share_percent(self) -> str:
        return percent_text(self.buffer_share)

    @property
    def uncertainty_percent(self) -> str:
        return percent_text(self.uncertainty_deduction)


def percent_text(share) -> str:
    """0.1000 -> "10", 0.125 -> "12.5"; "" for no value."""
    if share is None:
        return ""
    return f"{percent_from_share(share):f}"
