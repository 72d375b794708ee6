"""Measuring a land-cover map inside a boundary, as runs and ``manage.py
estimate`` need it: hectares per class code, and the parts of the boundary
the map does not describe (no-data, beyond the map).

Large runs are measured in parts (``plan_parts``): a raster's windows in
tiles of whole bands, a survey layer in ranges of feature ids, each part on
whichever worker takes it (``measure_part``), then added up
(``combine_parts``). The sums are exact (``area.WindowSums``, square
millimetres for polygons), so the parts give the very numbers one pass gives,
to the last digit. Reads files, writes nothing."""

import math
from decimal import Decimal
from pathlib import Path

import shapely
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon

from common import geodesy, quantities
from estimation import area, landuse
from estimation.models import ClassScheme, LandCoverDataset

Measured = tuple[dict[str, Decimal], dict]


def measure_classes(
    *,
    path: Path,
    kind: str,
    boundary: MultiPolygon,
    nodata_codes: list[str],
    class_field: str = "",
    progress=None,
) -> Measured:
    """Area (ha) per class code inside the boundary, and the parts the map does
    not describe: ``{"boundary", "nodata", "outside"}`` in ha, with
    ``"repaired_patches"``, the invalid polygons repaired and measured (None
    for a raster)."""
    lonlat = _lonlat(boundary)
    if kind == LandCoverDataset.Kind.RASTER:
        result = area.class_areas(
            path, lonlat, progress=progress, max_window_pixels=_window_pixels()
        )
        return _raster_classes(result, nodata_codes)
    result = landuse.class_areas(
        path, lonlat, class_field=class_field, progress=progress
    )
    return _landuse_classes(result, lonlat, nodata_codes)


def measure_raster_classes_of_each(
    *,
    path: Path,
    boundaries: list[MultiPolygon],
    nodata_codes: list[str],
    progress=None,
) -> list[Measured]:
    """``measure_classes`` of each boundary on one land-cover raster (a
    project's parcels, every project of a county), in one pass over it: each
    window is read once for all the boundaries on it. A bad boundary raises
    the ``AreaError`` of ``area.LandCoverRaster.class_areas_of_each``, which
    says which."""
    lonlat = [_lonlat(boundary) for boundary in boundaries]
    with area.LandCoverRaster(path, max_window_pixels=_window_pixels()) as raster:
        results = raster.class_areas_of_each(lonlat, progress=progress)
    return [_raster_classes(result, nodata_codes) for result in results]


def dataset_classes(
    dataset: LandCoverDataset, boundary: MultiPolygon, progress
) -> Measured:
    """``measure_classes`` of a stored dataset; a survey layer's second-level
    code areas too (``parts["code_areas"]``)."""
    by_code, parts = measure_classes(
        path=Path(dataset.file.path),
        kind=dataset.kind,
        boundary=boundary,
        nodata_codes=dataset.scheme.nodata_codes,
        class_field=dataset.class_field,
        progress=progress,
    )
    return _with_code_areas(dataset, by_code, parts)


# --- in parts, on several workers -----------------------------------------------


def plan_parts(dataset: LandCoverDataset, boundary: MultiPolygon) -> list[dict]:
    """The parts a dataset's measurement inside the boundary is cut into, as
    JSON: raster tiles of at most ``ESTIMATION_PART_PIXELS`` pixels of the
    boundary's extent (``{"rows": [first, past the last]}``), or ranges of
    at most ``ESTIMATION_PART_FEATURES`` survey patches (``{"fids": [first,
    past the last]}``). One part means one pass is enough. Raises the
    ``AreaError`` or ``LandUseError`` measuring would."""
    path, lonlat = Path(dataset.file.path), _lonlat(boundary)
    described = dataset.description
    if dataset.kind == LandCoverDataset.Kind.RASTER:
        pixels = described.get("width", math.inf) * described.get("height", 1)
        if pixels <= settings.ESTIMATION_PART_PIXELS:  # no need to open it
            return [{"rows": None}]
        with area.LandCoverRaster(path, max_window_pixels=_window_pixels()) as raster:
            tiles = raster.row_tiles(lonlat, max_pixels=settings.ESTIMATION_PART_PIXELS)
        return [{"rows": list(rows)} for rows in tiles]
    if described.get("features", math.inf) <= settings.ESTIMATION_PART_FEATURES:
        return [{"fids": None}]
    ranges = landuse.fid_ranges(path, max_features=settings.ESTIMATION_PART_FEATURES)
    if len(ranges) == 1:
        return [{"fids": None}]
    return [{"fids": list(fids)} for fids in ranges]


def measure_part(
    dataset: LandCoverDataset, boundary: MultiPolygon, part: dict, progress
) -> dict:
    """The exact sums of one part of ``plan_parts``, as JSON."""
    path, lonlat = Path(dataset.file.path), _lonlat(boundary)
    if dataset.kind == LandCoverDataset.Kind.RASTER:
        with area.LandCoverRaster(path, max_window_pixels=_window_pixels()) as raster:
            rows = tuple(part["rows"]) if part["rows"] else None
            sums = raster.class_area_sums(lonlat, rows=rows, progress=progress)
        return sums.to_json()
    fids = tuple(part["fids"]) if part["fids"] else None
    result = landuse.class_areas(
        path,
        lonlat,
        class_field=dataset.class_field,
        progress=progress,
        fids=fids,
    )
    return result.to_json()


def combine_parts(
    dataset: LandCoverDataset, boundary: MultiPolygon, sums: list[dict]
) -> Measured:
    """``dataset_classes`` from the sums of every part, in any order."""
    path, lonlat = Path(dataset.file.path), _lonlat(boundary)
    nodata_codes = dataset.scheme.nodata_codes
    if dataset.kind == LandCoverDataset.Kind.RASTER:
        total = area.WindowSums(None)
        for part in sums:
            total.merge(area.WindowSums.from_json(part))
        with area.LandCoverRaster(path, max_window_pixels=_window_pixels()) as raster:
            outside_m2, boundary_m2 = raster.boundary_areas_m2(lonlat)
            result = raster.class_areas_from(
                total, outside_m2=outside_m2, boundary_m2=boundary_m2
            )
        by_code, parts = _raster_classes(result, nodata_codes)
    else:
        result = landuse.LandUseAreas.merged(
            landuse.LandUseAreas.from_json(part) for part in sums
        )
        by_code, parts = _landuse_classes(result, lonlat, nodata_codes)
    return _with_code_areas(dataset, by_code, parts)


# --- from square metres to the run's table ----------------------------------------


def _window_pixels() -> int:
    return settings.ESTIMATION_WINDOW_PIXELS


def _lonlat(boundary: MultiPolygon) -> shapely.Geometry:
    return shapely.from_wkb(bytes(boundary.wkb))


def _raster_classes(result: area.ClassAreas, nodata_codes: list[str]) -> Measured:
    return _classes_and_parts(
        {
            str(code): quantities.hectares(m2)
            for code, m2 in result.area_m2_by_class.items()
        },
        nodata_codes,
        boundary_m2=result.boundary_m2,
        nodata_m2=result.nodata_m2,
        outside_m2=result.outside_raster_m2,
        repaired=None,
    )


def _landuse_classes(
    result: landuse.LandUseAreas, lonlat: shapely.Geometry, nodata_codes: list[str]
) -> Measured:
    measured = result.area_m2_by_code
    boundary_m2 = geodesy.geodesic_area_m2(lonlat)
    return _classes_and_parts(
        {code: quantities.hectares(m2) for code, m2 in measured.items()},
        nodata_codes,
        boundary_m2=boundary_m2,
        nodata_m2=0.0,
        outside_m2=max(0.0, boundary_m2 - math.fsum(measured.values())),
        repaired=result.repaired,
    )


def _classes_and_parts(
    by_code: dict[str, Decimal],
    nodata_codes: list[str],
    *,
    boundary_m2: float,
    nodata_m2: float,
    outside_m2: float,
    repaired,
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The scheme's no-data codes moved from the classes to the no-data part."""
    for code in nodata_codes:
        if code in by_code:
            nodata_m2 += float(by_code.pop(code) * quantities.M2_PER_HA)
    return by_code, {
        "boundary": quantities.hectares(boundary_m2),
        "nodata": quantities.hectares(nodata_m2),
        "outside": quantities.hectares(outside_m2),
        "repaired_patches": repaired,
    }


def survey_code_areas(
    by_code_ha: dict[str, Decimal], scheme: ClassScheme
) -> list[tuple[str, str, Decimal]]:
    """(second-level code, its name in the scheme, ha) for a land-use polygon
    run, by code: the K of 0201K and the like folded in. A code the scheme
    does not list takes its first-level class's name (0201: 园地)."""
    labels = dict(scheme.mappings.values_list("code", "label"))
    summed: dict[str, Decimal] = {}
    for code, ha in by_code_ha.items():
        key = landuse.second_level_code(code)
        summed[key] = summed.get(key, Decimal(0)) + ha
    return [
        (code, _code_label(code, labels), ha) for code, ha in sorted(summed.items())
    ]


def _code_label(code: str, labels: dict[str, str]) -> str:
    if code in labels:
        return labels[code]
    if len(code) == 4 and code.isdigit():
        return labels.get(code[:2], "")
    return ""


def _with_code_areas(
    dataset: LandCoverDataset, by_code: dict[str, Decimal], parts: dict
) -> Measured:
    if dataset.kind == LandCoverDataset.Kind.VECTOR:
        parts["code_areas"] = survey_code_areas(by_code, dataset.scheme)
    return by_code, parts
