"""Writes for the estimation app.

Guarantees: a refused input changes nothing (one transaction per call, errors as
translated ``ValidationError`` or ``PermissionDenied``); a run's inputs are
fingerprinted before it starts and the methodology version it uses is frozen in
the same transaction; ``execute_run`` is safe to retry (a finished run is left
as it is).

Verification and issuance (the end of this module): bureau staff submit a
finished run of a registered project for a monitoring period; a verifier of a
verification body that neither made the run nor owns the project approves or
rejects it; a registry admin issues an approved one through
``trading.services.issue_batch``. No run is issued twice, no project twice for
overlapping monitoring periods, and nothing is issued if the run's inputs have
changed since the verifier checked them or the boundary now overlaps another
live project.
"""

import hashlib
import json
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import rasterio
import shapely
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from estimation import area, calculations, landuse
from estimation.errors import area_error_message, calculation_error_message
from estimation.models import (
    ClassScheme,
    Coefficient,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    Verification,
    percent_text,
)
from estimation.selectors import (
    is_verifier_conflicted,
    issuance_for,
    scheme_lookup,
    verification_body_of,
)
from registry import services as registry_services
from registry.errors import field_error
from registry.models import Account, Organization, Project, ProjectEvent, User
from registry.roles import Role
from registry.selectors import find_issued_batch, has_role, is_member
from trading import services as trading_services

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
RASTER_EXTENSIONS = (".tif", ".tiff")
VECTOR_EXTENSIONS = (".gpkg", ".zip")
PROGRESS_STEP = 5  # percent between progress writes
# Part of every run's fingerprint: bump it when a change to the area engine or
# the arithmetic can change a result.
ENGINE_VERSION = "2026.11-1"


def _check_staff_of(actor: User, organization: Organization) -> None:
    if not (
        has_role(actor, Role.BUREAU_STAFF) and is_member(actor, organization)
    ) and not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(
            _("Only bureau staff acting for %(organization)s can do this.")
            % {"organization": organization.display_name}
        )


def _store_upload(
    uploaded, limit: int
) -> tuple[Path, str, tempfile.TemporaryDirectory]:
    """Copy an upload to a server-named temporary file, hashing it on the way."""
    if uploaded.size == 0:
        raise ValidationError(_("The file is empty."), code="empty_file")
    if uploaded.size > limit:
        raise ValidationError(
            _("The file is larger than the %(limit)d MB limit.")
            % {"limit": limit // (1024 * 1024)},
            code="file_too_large",
        )
    workdir = tempfile.TemporaryDirectory(prefix="landcover-")
    suffix = Path(uploaded.name or "").suffix.lower()
    path = Path(workdir.name) / f"upload{suffix}"
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as target:
        for chunk in uploaded.chunks():
            written += len(chunk)
            if written > limit:
                workdir.cleanup()
                raise ValidationError(
                    _("The file is larger than the %(limit)d MB limit.")
                    % {"limit": limit // (1024 * 1024)},
                    code="file_too_large",
                )
            digest.update(chunk)
            target.write(chunk)
    return path, digest.hexdigest(), workdir


@transaction.atomic
def upload_landcover_dataset(
    *,
    actor: User,
    organization: Organization,
    name_zh: str,
    name_en: str,
    product: str,
    year: int,
    scheme: ClassScheme,
    uploaded,
    class_field: str = "",
    is_demo: bool = False,
) -> LandCoverDataset:
    """Check and store a land-cover GeoTIFF, or land-use polygons with a class
    field. The file is opened with the same checks the estimate will use."""
    _check_staff_of(actor, organization)
    name = uploaded.name or ""
    suffix = Path(name).suffix.lower()
    if suffix not in RASTER_EXTENSIONS + VECTOR_EXTENSIONS:
        raise ValidationError(
            _(
                "Upload a GeoTIFF (.tif) of class codes, or land-use polygons as a "
                "GeoPackage or a zipped Shapefile."
            ),
            code="unsupported_format",
        )
    path, sha256, workdir = _store_upload(uploaded, settings.LANDCOVER_MAX_BYTES)
    try:
        if suffix in RASTER_EXTENSIONS:
            kind = LandCoverDataset.Kind.RASTER
            description = _describe_raster(path)
        else:
            kind = LandCoverDataset.Kind.VECTOR
            if not class_field.strip():
                raise ValidationError(
                    {"class_field": _("Name the field that holds the class codes.")}
                )
            description = landuse.describe(path, class_field=class_field.strip())
        dataset = LandCoverDataset(
            name_zh=name_zh.strip(),
            name_en=name_en.strip(),
            product=product,
            year=year,
            scheme=scheme,
            kind=kind,
            original_name=name[-255:],
            size_bytes=uploaded.size,
            sha256=sha256,
            class_field=class_field.strip(),
            crs=description.pop("crs", ""),
            description=description,
            organization=organization,
            uploaded_by=actor,
            is_demo=is_demo,
        )
        dataset.full_clean(exclude=["file"])
        with path.open("rb") as handle:
            dataset.file.save(f"{sha256[:16]}{suffix}", File(handle), save=False)
        dataset.save()
        return dataset
    finally:
        workdir.cleanup()


def _describe_raster(path: Path) -> dict:
    with path.open("rb") as handle:
        if not handle.read(4).startswith(TIFF_SIGNATURES):
            raise ValidationError(
                _("This is not a GeoTIFF file."), code="unsupported_format"
            )
    try:
        with area.LandCoverRaster(path):  # the checks every estimate will make
            pass
    except area.AreaError as error:
        raise ValidationError(area_error_message(error), code=error.code) from None
    with rasterio.open(path) as src:
        return {
            "crs": src.crs.to_string() if src.crs else "",
            "width": src.width,
            "height": src.height,
            "pixel_size": [abs(src.res[0]), abs(src.res[1])],
            "bounds": list(src.bounds),
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "tiled": src.profile.get("tiled", False),
        }


def _methodology_inputs(methodology: Methodology) -> dict:
    return {
        "slug": methodology.slug,
        "version": methodology.version,
        "kind": methodology.kind,
        "coefficients": [
            [c.ecosystem, c.pool, str(c.value), c.unit, c.basis, c.sign]
            for c in methodology.coefficients.order_by("ecosystem", "pool")
        ],
    }


def fingerprint_inputs(inputs: dict) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_inputs(
    *,
    boundary: MultiPolygon,
    dataset: LandCoverDataset,
    baseline_dataset: LandCoverDataset | None,
    methodology: Methodology,
    period_start: date,
    period_end: date,
    price: Decimal | None,
) -> dict:
    """Everything a run's numbers depend on, as canonical JSON-able data."""

    def dataset_inputs(item: LandCoverDataset | None):
        if item is None:
            return None
        return {
            "sha256": item.sha256,
            "kind": item.kind,
            "class_field": item.class_field,
            "scheme": item.scheme.slug,
            "mapping": sorted(scheme_lookup(item.scheme).items()),
            "nodata_codes": sorted(item.scheme.nodata_codes),
        }

    return {
        "boundary_wkb_sha256": hashlib.sha256(bytes(boundary.wkb)).hexdigest(),
        "dataset": dataset_inputs(dataset),
        "baseline_dataset": dataset_inputs(baseline_dataset),
        "methodology": _methodology_inputs(methodology),
        "period": [period_start.isoformat(), period_end.isoformat()],
        "price_cny_per_t_co2e": None if price is None else str(price),
        "engine": ENGINE_VERSION,
    }


@transaction.atomic
def create_run(
    *,
    actor: User,
    dataset: LandCoverDataset,
    methodology: Methodology,
    period_start: date,
    period_end: date,
    project: Project | None = None,
    boundary: MultiPolygon | None = None,
    organization: Organization | None = None,
    price_cny_per_t_co2e: Decimal | None = None,
    baseline_dataset: LandCoverDataset | None = None,
) -> EstimationRun:
    """Queue an estimate of ``project``'s boundary (or an ad-hoc ``boundary`` for
    ``organization``); freezes the methodology version; the task starts once the
    transaction commits."""
    if project is not None:
        organization, boundary = project.owner, project.boundary
    if organization is None or boundary is None:
        raise ValidationError(
            _("Choose a project or give a boundary."), code="boundary"
        )
    _check_staff_of(actor, organization)
    if price_cny_per_t_co2e is not None and price_cny_per_t_co2e < 0:
        raise ValidationError(
            {"price_cny_per_t_co2e": _("The carbon price cannot be negative.")}
        )
    if period_end < period_start:
        raise ValidationError(
            {"period_end": _("The monitoring period must end after it starts.")}
        )
    if (
        methodology.kind == Methodology.Kind.STOCK_DIFFERENCE
        and baseline_dataset is None
    ):
        raise ValidationError(
            {
                "baseline_dataset": _(
                    "The stock-difference method needs a baseline land-cover map."
                )
            }
        )
    inputs = run_inputs(
        boundary=boundary,
        dataset=dataset,
        baseline_dataset=baseline_dataset,
        methodology=methodology,
        period_start=period_start,
        period_end=period_end,
        price=price_cny_per_t_co2e,
    )
    run = EstimationRun(
        project=project,
        organization=organization,
        boundary=boundary,
        dataset=dataset,
        baseline_dataset=baseline_dataset,
        methodology=methodology,
        period_start=period_start,
        period_end=period_end,
        price_cny_per_t_co2e=price_cny_per_t_co2e,
        inputs=inputs,
        fingerprint=fingerprint_inputs(inputs),
        created_by=actor,
    )
    run.full_clean()
    run.save()
    if methodology.frozen_at is None:
        Methodology.objects.filter(pk=methodology.pk, frozen_at=None).update(
            frozen_at=timezone.now()
        )
    from estimation.tasks import execute_run_task

    transaction.on_commit(lambda: execute_run_task.delay(run.pk))
    return run


def _record_progress(run_id: int, fraction: float, last: list[int]) -> None:
    percent = min(99, int(fraction * 100))
    if percent >= last[0] + PROGRESS_STEP:
        last[0] = percent
        EstimationRun.objects.filter(pk=run_id).update(progress=percent)


def measure_classes(
    *,
    path: Path,
    kind: str,
    boundary: MultiPolygon,
    nodata_codes: list[str],
    class_field: str = "",
    progress=None,
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Area (ha) per class code inside the boundary, and the parts the map does
    not describe: ``{"boundary", "nodata", "outside"}`` in ha."""
    lonlat = shapely.from_wkb(bytes(boundary.wkb))
    if kind == LandCoverDataset.Kind.RASTER:
        result = area.class_areas(path, lonlat, progress=progress)
        by_code = {
            str(code): calculations.m2_to_ha(m2)
            for code, m2 in result.area_m2_by_class.items()
        }
        nodata_m2, outside_m2, boundary_m2 = (
            result.nodata_m2,
            result.outside_raster_m2,
            result.boundary_m2,
        )
    else:
        result = landuse.class_areas(
            path, lonlat, class_field=class_field, progress=progress
        )
        by_code = {code: calculations.m2_to_ha(m2) for code, m2 in result.items()}
        boundary_m2 = landuse.geodesic_area_m2(lonlat)
        nodata_m2 = 0.0
        outside_m2 = max(0.0, boundary_m2 - sum(result.values()))
    for code in nodata_codes:
        if code in by_code:
            nodata_m2 += float(by_code.pop(code) * calculations.M2_PER_HA)
    return by_code, {
        "boundary": calculations.m2_to_ha(boundary_m2),
        "nodata": calculations.m2_to_ha(nodata_m2),
        "outside": calculations.m2_to_ha(outside_m2),
    }


def _class_areas_ha(dataset: LandCoverDataset, boundary: MultiPolygon, progress):
    return measure_classes(
        path=Path(dataset.file.path),
        kind=dataset.kind,
        boundary=boundary,
        nodata_codes=dataset.scheme.nodata_codes,
        class_field=dataset.class_field,
        progress=progress,
    )


def flux_estimate(
    *,
    by_code_ha: dict[str, Decimal],
    scheme: ClassScheme,
    methodology: Methodology,
    years: Decimal,
    price: Decimal | None,
) -> calculations.SinkEstimate:
    by_ecosystem, unmapped = calculations.map_to_ecosystems(
        by_code_ha, scheme_lookup(scheme)
    )
    return calculations.flux_sink(
        by_ecosystem,
        flux_coefficients(methodology),
        years=years,
        price_cny_per_t_co2e=price,
        unmapped_codes_ha=unmapped,
    )


def flux_coefficients(methodology: Methodology) -> dict[str, calculations.Coefficient]:
    return {
        c.ecosystem: calculations.Coefficient(c.value, c.unit, c.sign)
        for c in methodology.coefficients.filter(basis=Coefficient.Basis.FLUX)
    }


def _stock_pools(methodology: Methodology) -> dict[str, dict[str, Decimal]]:
    pools: dict[str, dict[str, Decimal]] = {}
    for c in methodology.coefficients.filter(basis=Coefficient.Basis.STOCK):
        value = (
            c.value
            if c.unit == Coefficient.Unit.T_C
            else c.value / calculations.CO2_PER_C
        )
        pools.setdefault(c.ecosystem, {})[c.pool] = value
    return pools


def execute_run(*, run_id: int) -> EstimationRun:
    """Compute a queued run and store its table; failures are stored on the run
    with a translated reason. Safe to call again: finished runs are returned."""
    with transaction.atomic():
        run = EstimationRun.objects.select_for_update().get(pk=run_id)
        if run.status in (EstimationRun.Status.SUCCEEDED, EstimationRun.Status.FAILED):
            return run
        run.status = EstimationRun.Status.RUNNING
        run.started_at = timezone.now()
        run.progress = 0
        run.save(update_fields=["status", "started_at", "progress"])
    last = [0]
    try:
        outcome = _compute(
            run, lambda fraction: _record_progress(run.pk, fraction, last)
        )
    except (
        area.AreaError,
        calculations.CalculationError,
        landuse.LandUseError,
    ) as error:
        message = (
            calculation_error_message(error)
            if isinstance(error, calculations.CalculationError)
            else area_error_message(error)
        )
        EstimationRun.objects.filter(pk=run.pk).update(
            status=EstimationRun.Status.FAILED,
            error_code=error.code,
            error_message=message,
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        return run
    _store_results(run, *outcome)
    run.refresh_from_db()
    return run


def _compute(run: EstimationRun, progress):
    scheme_map = scheme_lookup(run.dataset.scheme)
    years = calculations.period_years(run.period_start, run.period_end)
    if run.methodology.kind == Methodology.Kind.FLUX:
        by_code, parts = _class_areas_ha(run.dataset, run.boundary, progress)
        estimate = flux_estimate(
            by_code_ha=by_code,
            scheme=run.dataset.scheme,
            methodology=run.methodology,
            years=years,
            price=run.price_cny_per_t_co2e,
        )
        return estimate, parts
    half = lambda offset: lambda fraction: progress(offset + fraction / 2)  # noqa: E731
    base_codes, _base_parts = _class_areas_ha(
        run.baseline_dataset, run.boundary, half(0)
    )
    alt_codes, parts = _class_areas_ha(run.dataset, run.boundary, half(0.5))
    base, base_unmapped = calculations.map_to_ecosystems(
        base_codes, scheme_lookup(run.baseline_dataset.scheme)
    )
    alternate, unmapped = calculations.map_to_ecosystems(alt_codes, scheme_map)
    for code, ha in base_unmapped.items():
        unmapped[code] = unmapped.get(code, Decimal(0)) + ha
    estimate = calculations.stock_change_estimate(
        baseline_ha=base,
        alternate_ha=alternate,
        pools_by_ecosystem=_stock_pools(run.methodology),
        years=years,
        price_cny_per_t_co2e=run.price_cny_per_t_co2e,
        unmapped_codes_ha=unmapped,
    )
    return estimate, parts


@transaction.atomic
def _store_results(run: EstimationRun, estimate, parts: dict) -> None:
    run = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if run.status != EstimationRun.Status.RUNNING:
        return
    run.results.all().delete()
    EcosystemResult.objects.bulk_create(
        EcosystemResult(
            run=run,
            ecosystem=row.ecosystem,
            rank=row.rank,
            area_ha=row.area_ha,
            share=row.share,
            coefficient=row.coefficient,
            coefficient_unit=row.coefficient_unit,
            sink_t_c_per_year=row.sink_t_c_per_year,
            sink_t_co2e_per_year=row.sink_t_co2e_per_year,
            sink_t_co2e_period=row.sink_t_co2e_period,
            value_cny_per_year=row.value_cny_per_year,
        )
        for row in estimate.ecosystems
    )
    quantize = lambda value: calculations.quantize(value, calculations.AREA_PLACES)  # noqa: E731
    run.boundary_area_ha = quantize(parts["boundary"])
    run.covered_area_ha = estimate.totals.area_ha + sum(
        estimate.unmapped_codes_ha.values(), Decimal(0)
    )
    run.nodata_area_ha = quantize(parts["nodata"])
    run.outside_area_ha = quantize(parts["outside"])
    run.unmapped_codes = {
        code: str(ha) for code, ha in estimate.unmapped_codes_ha.items()
    }
    run.years = estimate.years
    run.total_t_c_per_year = estimate.totals.sink_t_c_per_year
    run.total_t_co2e_per_year = estimate.totals.sink_t_co2e_per_year
    run.total_t_co2e_period = estimate.totals.sink_t_co2e_period
    run.total_value_cny_per_year = estimate.totals.value_cny_per_year
    run.total_value_cny_period = estimate.totals.value_cny_period
    run.status = EstimationRun.Status.SUCCEEDED
    run.progress = 100
    run.finished_at = timezone.now()
    run.save()


@transaction.atomic
def new_methodology_version(*, actor: User, methodology: Methodology) -> Methodology:
    """Copy a methodology, with its coefficients, as the next version (editable
    until it is first used)."""
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can do this."))
    latest = (
        Methodology.objects.filter(slug=methodology.slug).order_by("-version").first()
    )
    copy = Methodology.objects.get(pk=methodology.pk)
    coefficients = list(methodology.coefficients.all())
    copy.pk = None
    copy.version = latest.version + 1
    copy.is_default = False
    copy.frozen_at = None
    copy.save()
    for coefficient in coefficients:
        coefficient.pk = None
        coefficient.methodology = copy
    Coefficient.objects.bulk_create(coefficients)
    return copy


# Verification and issuance ---------------------------------------------------------


def _stored_file_sha256(dataset: LandCoverDataset) -> str:
    """SHA-256 of the dataset's file as stored now ("missing" if it is gone)."""
    digest = hashlib.sha256()
    try:
        with dataset.file.storage.open(dataset.file.name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
    except (OSError, ValueError):
        return "missing"
    return digest.hexdigest()


def current_fingerprint(run: EstimationRun) -> str:
    """The fingerprint of the run's inputs as they are now: the project's
    current boundary, the bytes of the land-cover files, the class mappings and
    the methodology's coefficients. Equal to ``run.fingerprint`` while nothing
    the numbers rest on has changed. The engine version is the run's own: a
    newer engine does not change what was computed and verified."""
    run = (
        EstimationRun.objects.select_related(
            "project", "dataset__scheme", "baseline_dataset__scheme", "methodology"
        )
        .defer(None)
        .get(pk=run.pk)
    )
    inputs = run_inputs(
        boundary=run.project.boundary if run.project_id else run.boundary,
        dataset=run.dataset,
        baseline_dataset=run.baseline_dataset,
        methodology=run.methodology,
        period_start=run.period_start,
        period_end=run.period_end,
        price=run.price_cny_per_t_co2e,
    )
    inputs["engine"] = run.inputs.get("engine", ENGINE_VERSION)
    for key, item in (
        ("dataset", run.dataset),
        ("baseline_dataset", run.baseline_dataset),
    ):
        if item is not None:
            inputs[key]["sha256"] = _stored_file_sha256(item)
    return fingerprint_inputs(inputs)


def _period_text(start: date, end: date) -> str:
    return f"{start.isoformat()} – {end.isoformat()}"


def _refuse_issued_overlap(project: Project, start: date, end: date) -> None:
    """No project is credited twice for the same days, however it was issued."""
    issued = find_issued_batch(project=project, start=start, end=end)
    if issued is not None:
        raise ValidationError(
            _(
                "Credits for %(period)s were already issued for this project "
                "(batch %(batch)s): monitoring periods of one project may not "
                "overlap."
            )
            % {
                "period": _period_text(issued.monitoring_start, issued.monitoring_end),
                "batch": issued.serial_label,
            },
            code="period_overlap",
        )


def _issuance(
    verification: Verification, buffer_share: Decimal
) -> calculations.Issuance:
    try:
        return issuance_for(verification, buffer_share)
    except calculations.CalculationError as error:
        raise ValidationError(
            calculation_error_message(error), code=error.code
        ) from None


def _refuse_nothing_to_issue(issuance: calculations.Issuance) -> None:
    if issuance.quantity < 1:
        raise ValidationError(
            _(
                "After the uncertainty deduction the estimate over this period is "
                "%(net)s t CO2e: less than one whole tonne, so there is nothing to "
                "issue."
            )
            % {"net": issuance.net_t_co2e},
            code="nothing_to_issue",
        )


def _lock_project(project_id: int) -> Project:
    """The project's row, locked: verifications and issuances of one project
    take their turn, so two overlapping periods cannot both get through."""
    return Project.objects.select_for_update().get(pk=project_id)


def _refuse_unless_registered(project: Project) -> None:
    if project.status != Project.Status.REGISTERED:
        raise ValidationError(
            _(
                "Project %(code)s is “%(status)s”: only a registered project's "
                "estimates are verified and issued."
            )
            % {"code": project.code, "status": project.get_status_display()},
            code="project_state",
        )


def _check_monitoring_period(
    run: EstimationRun, project: Project, start: date, end: date
) -> None:
    if end < start:
        raise field_error(
            "monitoring_end",
            _("The monitoring period must end after it starts."),
            "period",
        )
    if start < run.period_start or end > run.period_end:
        raise ValidationError(
            _(
                "The monitoring period must lie within the run's period "
                "(%(period)s): the estimate says nothing about other years."
            )
            % {"period": _period_text(run.period_start, run.period_end)},
            code="period_outside_run",
        )
    if start < project.crediting_start or end > project.crediting_end:
        raise ValidationError(
            _(
                "The monitoring period must lie within the project's crediting "
                "period (%(period)s)."
            )
            % {"period": _period_text(project.crediting_start, project.crediting_end)},
            code="period_outside_crediting",
        )
    if end >= timezone.localdate():
        raise field_error(
            "monitoring_end",
            _(
                "Credits are issued for carbon already stored: the monitoring "
                "period must have ended."
            ),
            "period_not_over",
        )
    _refuse_issued_overlap(project, start, end)


@transaction.atomic
def submit_for_verification(
    *,
    actor: User,
    run: EstimationRun,
    monitoring_start: date | None = None,
    monitoring_end: date | None = None,
    note: str = "",
    revises: Verification | None = None,
) -> Verification:
    """Ask for an independent check of a finished run of a registered project
    over a monitoring period (the run's period unless another is given, within
    it); ``revises`` is the rejected verification this one answers."""
    run = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if run.project_id is None:
        raise ValidationError(
            _("Only an estimate of a registered project can be verified."),
            code="no_project",
        )
    if not (has_role(actor, Role.BUREAU_STAFF) and is_member(actor, run.organization)):
        raise PermissionDenied(
            _("Only bureau staff acting for %(organization)s can submit its runs.")
            % {"organization": run.organization.display_name}
        )
    if run.status != EstimationRun.Status.SUCCEEDED:
        raise ValidationError(
            _(
                "Only a finished estimation run can be verified; this one is "
                "“%(status)s”."
            )
            % {"status": run.get_status_display()},
            code="run_state",
        )
    project = _lock_project(run.project_id)
    _refuse_unless_registered(project)
    start = monitoring_start or run.period_start
    end = monitoring_end or run.period_end
    _check_monitoring_period(run, project, start, end)
    if run.verifications.filter(status__in=Verification.OPEN_STATUSES).exists():
        raise ValidationError(
            _(
                "This run has already been submitted for verification; a run is "
                "verified and issued once."
            ),
            code="already_submitted",
        )
    pending = (
        project.verifications.filter(
            status__in=[Verification.Status.SUBMITTED, Verification.Status.APPROVED],
            monitoring_start__lte=end,
            monitoring_end__gte=start,
        )
        .order_by("pk")
        .first()
    )
    if pending is not None:
        raise ValidationError(
            _(
                "Verification #%(pk)s of this project for %(period)s is still open "
                "and overlaps this monitoring period."
            )
            % {
                "pk": pending.pk,
                "period": _period_text(
                    pending.monitoring_start, pending.monitoring_end
                ),
            },
            code="period_overlap",
        )
    if revises is not None and (
        revises.project_id != project.pk
        or revises.status != Verification.Status.REJECTED
    ):
        raise ValidationError(
            _("Only a rejected verification of the same project can be revised."),
            code="revises",
        )
    verification = Verification(
        run=run,
        project=project,
        monitoring_start=start,
        monitoring_end=end,
        revises=revises,
        note=note.strip(),
        submitted_by=actor,
    )
    _refuse_nothing_to_issue(_issuance(verification, run.methodology.buffer_share))
    verification.full_clean()
    verification.save()
    registry_services.record_project_event(
        project=project,
        kind=ProjectEvent.Kind.VERIFICATION_SUBMITTED,
        actor=actor,
        reference=f"#{verification.pk} · {_period_text(start, end)}",
        note=verification.note,
    )
    return verification


def _locked_submitted(verification: Verification) -> Verification:
    verification = (
        Verification.objects.select_for_update(of=("self",))
        .select_related("run__organization", "project__owner")
        .get(pk=verification.pk)
    )
    if verification.status != Verification.Status.SUBMITTED:
        raise ValidationError(
            _("This verification is already “%(status)s”; it cannot be decided again.")
            % {"status": verification.get_status_display()},
            code="not_submitted",
        )
    return verification


def _check_verifier(actor: User, verification: Verification) -> Organization:
    body = verification_body_of(actor)
    if body is None:
        raise PermissionDenied(
            _("Only a verifier acting for a verification body can verify estimates.")
        )
    if is_verifier_conflicted(actor, verification):
        raise PermissionDenied(
            _(
                "You act for the organization that made or owns this estimate; a "
                "verifier of another organization must verify it."
            )
        )
    return body


def _decide(
    verification: Verification,
    *,
    actor: User,
    body: Organization,
    status: str,
    reasons: str,
    kind: str,
) -> Verification:
    verification.status = status
    verification.verifier = actor
    verification.verification_body = body
    verification.reasons = reasons.strip()
    verification.decided_at = timezone.now()
    verification.save()
    registry_services.record_project_event(
        project=verification.project,
        kind=kind,
        actor=actor,
        reference=f"#{verification.pk}",
        note=verification.reasons,
    )
    return verification


@transaction.atomic
def approve_verification(
    *, actor: User, verification: Verification, reasons: str = ""
) -> Verification:
    """The verifier confirms the calculation; the fingerprint of the run's inputs
    as checked now is kept, for issuance to compare."""
    verification = _locked_submitted(verification)
    body = _check_verifier(actor, verification)
    fingerprint = current_fingerprint(verification.run)
    if fingerprint != verification.run.fingerprint:
        raise ValidationError(
            _(
                "The inputs of run #%(run)s have changed since it was computed (its "
                "boundary, land-cover file, class scheme or methodology): its "
                "numbers no longer follow from them. Reject it so that the "
                "submitter makes a new run."
            )
            % {"run": verification.run_id},
            code="fingerprint",
        )
    verification.fingerprint = fingerprint
    return _decide(
        verification,
        actor=actor,
        body=body,
        status=Verification.Status.APPROVED,
        reasons=reasons,
        kind=ProjectEvent.Kind.VERIFICATION_APPROVED,
    )


@transaction.atomic
def reject_verification(
    *, actor: User, verification: Verification, reasons: str
) -> Verification:
    """The verifier refuses the calculation, saying why; the submitter may
    answer with a revised submission."""
    if not reasons.strip():
        raise field_error(
            "reasons",
            _("Give the reasons: the submitter must know what to fix."),
            "reasons",
        )
    verification = _locked_submitted(verification)
    body = _check_verifier(actor, verification)
    return _decide(
        verification,
        actor=actor,
        body=body,
        status=Verification.Status.REJECTED,
        reasons=reasons,
        kind=ProjectEvent.Kind.VERIFICATION_REJECTED,
    )


def _buffer_share(
    verification: Verification, value, reason: str
) -> tuple[Decimal, str]:
    default = verification.run.methodology.buffer_share
    if value is None or value == "":
        return default, reason.strip()
    try:
        share = calculations.share_from(value, name="buffer share")
    except calculations.CalculationError:
        raise field_error(
            "buffer_share",
            _("The buffer share must be at least 0 and less than 100 percent."),
            "buffer_share",
        ) from None
    if share != share.quantize(Decimal("0.0001")):  # what the records can hold
        raise field_error(
            "buffer_share",
            _("Give the buffer share to at most two decimals of a percent."),
            "buffer_share",
        )
    if share != default and not reason.strip():
        raise field_error(
            "buffer_share_reason",
            _(
                "Give the reason for a buffer share other than the methodology's "
                "%(default)s %%."
            )
            % {"default": percent_text(default)},
            "buffer_share_reason",
        )
    return share, reason.strip()


@transaction.atomic
def issue_verification(
    *,
    actor: User,
    verification: Verification,
    buffer_share=None,
    buffer_share_reason: str = "",
) -> Verification:
    """Issue an approved verification as one credit batch: whole tonnes over
    the monitoring period after the uncertainty deduction (rounded down), of
    which floor(quantity x buffer share) go to the buffer pool and the rest to
    the project owner's holding account. ``buffer_share`` (0 to below 1)
    overrides the methodology's, with a reason. One transaction: a refusal
    issues nothing."""
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can issue credits."))
    # Only the verification's row: the project's is locked later, in order.
    verification = (
        Verification.objects.select_for_update(of=("self",))
        .select_related("run__methodology", "project")
        .get(pk=verification.pk)
    )
    refusals = {
        Verification.Status.SUBMITTED: _(
            "This run has not been verified yet: only an approved verification "
            "is issued."
        ),
        Verification.Status.REJECTED: _(
            "This verification was rejected: nothing can be issued for it."
        ),
        Verification.Status.ISSUED: _(
            "Credits were already issued for this verification (batch %(batch)s); "
            "a run is issued once."
        ),
    }
    if verification.status in refusals:
        message = refusals[verification.status]
        if verification.status == Verification.Status.ISSUED:
            message %= {"batch": verification.batch.serial_label}
        raise ValidationError(message, code=f"not_approved_{verification.status}")
    share, reason = _buffer_share(verification, buffer_share, buffer_share_reason)
    project = Project.objects.get(pk=verification.project_id)
    _refuse_unless_registered(project)
    run = verification.run
    if run.verifications.filter(status=Verification.Status.ISSUED).exists():
        raise ValidationError(
            _("Credits were already issued for run #%(run)s; a run is issued once.")
            % {"run": run.pk},
            code="run_issued",
        )
    if current_fingerprint(run) != verification.fingerprint:
        raise ValidationError(
            _(
                "The inputs of run #%(run)s have changed since the verifier checked "
                "them (its boundary, land-cover file, class scheme or methodology): "
                "nothing was issued. A new run must be made and verified."
            )
            % {"run": run.pk},
            code="fingerprint",
        )
    # The boundary check takes registration's lock before the project's row,
    # in the order registration takes them, so the two never deadlock.
    registry_services.refuse_live_overlaps(project=project)
    project = _lock_project(project.pk)
    _refuse_unless_registered(project)
    _refuse_issued_overlap(
        project, verification.monitoring_start, verification.monitoring_end
    )
    issuance = _issuance(verification, share)
    _refuse_nothing_to_issue(issuance)
    holder = project.owner.accounts.filter(kind=Account.Kind.HOLDING).first()
    if holder is None:
        raise ValidationError(
            _("%(owner)s has no holding account to receive the credits.")
            % {"owner": project.owner.display_name},
            code="no_holding_account",
        )
    batch = trading_services.issue_batch(
        actor=actor,
        project=project,
        # The vintage is the year in which the monitoring period ends.
        vintage=verification.monitoring_end.year,
        monitoring_start=verification.monitoring_start,
        monitoring_end=verification.monitoring_end,
        quantity=issuance.quantity,
        buffer_quantity=issuance.buffer_quantity,
        holder_account=holder,
        source=f"estimation-run:{run.pk} verification:{verification.pk}",
    )
    verification.status = Verification.Status.ISSUED
    verification.batch = batch
    verification.uncertainty_deduction = run.methodology.uncertainty_deduction
    verification.buffer_share = share
    verification.buffer_share_reason = reason
    verification.issued_by = actor
    verification.issued_at = timezone.now()
    verification.full_clean(exclude=["run", "project", "revises", "batch"])
    verification.save()
    registry_services.record_project_event(
        project=project,
        kind=ProjectEvent.Kind.CREDITS_ISSUED,
        actor=actor,
        reference=f"{batch.serial_label} · {batch.quantity} t CO2e",
        note=reason,
    )
    return verification
