"""Estimation runs: create (fingerprint the inputs, freeze the methodology
version), execute (measure, compute, store the table) and new methodology
versions. A run's inputs are fingerprinted before it starts
(``estimation.fingerprints``, the same path ``manage.py estimate`` takes);
``execute_run`` is safe to retry (a finished run is left as it is)."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import shapely
from django.contrib.gis.geos import MultiPolygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common import geodesy, quantities
from estimation import area, calculations, fingerprints, landuse
from estimation.errors import area_error_message, calculation_error_message
from estimation.models import (
    ClassScheme,
    Coefficient,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
)
from estimation.selectors import dataset_inputs, methodology_inputs, scheme_lookup
from estimation.services.permissions import require_staff_of
from registry.models import Organization, Project, User
from registry.roles import Role
from registry.selectors import has_role

PROGRESS_STEP = 5  # percent between progress writes


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
    require_staff_of(actor, organization)
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
    inputs = fingerprints.estimate_inputs(
        boundary_wkb=bytes(boundary.wkb),
        landcover=dataset_inputs(dataset),
        baseline=dataset_inputs(baseline_dataset),
        methodology=methodology_inputs(methodology),
        period=(period_start, period_end),
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
        fingerprint=fingerprints.fingerprint(inputs),
        created_by=actor,
    )
    run.full_clean()
    run.save()
    if methodology.frozen_at is None:
        Methodology.objects.filter(pk=methodology.pk, frozen_at=None).update(
            frozen_at=timezone.now()
        )
    from estimation.tasks import execute_run_task  # the task imports this module

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
            str(code): quantities.hectares(m2)
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
        by_code = {code: quantities.hectares(m2) for code, m2 in result.items()}
        boundary_m2 = geodesy.geodesic_area_m2(lonlat)
        nodata_m2 = 0.0
        outside_m2 = max(0.0, boundary_m2 - sum(result.values()))
    for code in nodata_codes:
        if code in by_code:
            nodata_m2 += float(by_code.pop(code) * quantities.M2_PER_HA)
    return by_code, {
        "boundary": quantities.hectares(boundary_m2),
        "nodata": quantities.hectares(nodata_m2),
        "outside": quantities.hectares(outside_m2),
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
    run.boundary_area_ha = quantities.rounded(parts["boundary"], quantities.AREA_PLACES)
    run.covered_area_ha = estimate.totals.area_ha + sum(
        estimate.unmapped_codes_ha.values(), Decimal(0)
    )
    run.nodata_area_ha = quantities.rounded(parts["nodata"], quantities.AREA_PLACES)
    run.outside_area_ha = quantities.rounded(parts["outside"], quantities.AREA_PLACES)
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
