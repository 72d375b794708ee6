"""Writes for the estimation app.

Guarantees: a refused input changes nothing (one transaction per call, errors as
translated ``ValidationError`` or ``PermissionDenied``); a run's inputs are
fingerprinted before it starts and the methodology version it uses is frozen in
the same transaction; ``execute_run`` is safe to retry (a finished run is left
as it is).
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
)
from estimation.selectors import scheme_lookup
from registry.models import Organization, Project, User
from registry.roles import Role
from registry.selectors import has_role, is_member

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
