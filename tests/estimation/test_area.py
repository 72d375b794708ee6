"""estimation.area: per-class areas checked against analytic and geodesic areas.

Every raster is written here with rasterio; the one real file is the small
MODIS land-cover GeoTIFF under data/.
"""

import ast
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Geod, Transformer
from rasterio.transform import Affine

from estimation import area
from estimation.area import (
    INVARIANT_RTOL,
    AreaError,
    LandCoverRaster,
    class_areas,
    pixel_row_areas_m2,
)

RES_30M = 0.000269495  # degrees, ~30 m
GEOD = Geod(ellps="WGS84")
DATA = Path(__file__).resolve().parents[2] / "data"
MODIS = DATA / "modis" / "mcd12c1_2019_igbp_guizhou.tif"
BIJIE_KM2 = 26_865.8

ALBERS_CLCD = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m"
ALBERS_KRASSOWSKY = (
    "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=krass "
    "+towgs84=15.8,-154.4,-82.3,0,0,0,0 +units=m"
)


def from_origin(west, north, xsize, ysize):
    """A north-up geotransform (rasterio's own helper warns on newer affine)."""
    return Affine(xsize, 0, west, 0, -ysize, north)


def write_raster(path, data, transform, crs="EPSG:4326", nodata=None, **profile):
    data = np.asarray(data)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=1 if data.ndim == 2 else data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        **profile,
    ) as dst:
        if data.ndim == 2:
            dst.write(data, 1)
        else:
            dst.write(data)
    return path


def geodesic_area_m2(geometry):
    """The reference: pyproj's area, edges geodesics (as the registry measures)."""
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(geometry))[0])


def geodesic_polygon(points, step_m=20.0):
    """A polygon whose straight pieces follow the geodesics between ``points``."""
    ring = []
    for (lon0, lat0), (lon1, lat1) in itertools.pairwise([*points, points[0]]):
        n = int(GEOD.inv(lon0, lat0, lon1, lat1)[2] // step_m)
        ring += [(lon0, lat0), *GEOD.npts(lon0, lat0, lon1, lat1, n)]
    return shapely.Polygon(ring)


def lonlat_box(west, south, east, north):
    """A lon/lat rectangle whose edges follow parallels and meridians."""
    return shapely.segmentize(shapely.box(west, south, east, north), 0.0005)


def star_parcel(rng, lon, lat, hectares):
    """A random star-shaped polygon of about ``hectares`` around (lon, lat)."""
    n = int(rng.integers(5, 14))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.5, 1.0, n)
    unit = shapely.Polygon(np.c_[radii * np.cos(angles), radii * np.sin(angles)])
    if not unit.is_valid or unit.area == 0:
        return star_parcel(rng, lon, lat, hectares)
    scale_m = math.sqrt(hectares * 1e4 / unit.area)
    dlon = scale_m / (111_320 * math.cos(math.radians(lat)))
    dlat = scale_m / 110_574
    return shapely.transform(unit, lambda xy: xy * (dlon, dlat) + (lon, lat))


@pytest.fixture(scope="module")
def bijie_city():
    features = json.loads((DATA / "bijie" / "divisions.geojson").read_text())[
        "features"
    ]
    city = next(f for f in features if f["properties"]["level"] == "city")
    return shapely.geometry.shape(city["geometry"]), city


@pytest.fixture(scope="module")
def raster_30m(tmp_path_factory):
    """A 30 m lon/lat raster near Bijie: classes 1-5 at random, nodata 255 in a
    corner block."""
    rng = np.random.default_rng(7)
    data = rng.integers(1, 6, size=(400, 400), dtype=np.uint8)
    data[:40, :40] = 255
    path = tmp_path_factory.mktemp("r") / "classes.tif"
    transform = from_origin(105.25, 27.15, RES_30M, RES_30M)
    return write_raster(path, data, transform, nodata=255, tiled=True,
                        blockxsize=128, blockysize=128, compress="deflate")  # fmt: skip


# --- geographic rasters: exact areas -----------------------------------------


def test_grid_aligned_rectangle_has_its_geodesic_area_per_class(tmp_path):
    data = np.zeros((20, 30), np.uint8)
    data[:, 10:] = 1
    data[12:, :] = 2
    west, north = 105.0, 27.2
    path = write_raster(
        tmp_path / "r.tif", data, from_origin(west, north, RES_30M, RES_30M)
    )
    col = row = RES_30M
    # edges along parallels and meridians: the rectangle covers whole pixels
    rect = lonlat_box(
        west + 4 * col, north - 17 * row, west + 25 * col, north - 3 * row
    )

    result = class_areas(path, rect)

    def quad(c0, r0, c1, r1):  # pixel columns/rows -> geodesic area
        return geodesic_area_m2(
            lonlat_box(
                west + c0 * col, north - r1 * row, west + c1 * col, north - r0 * row
            )
        )

    expected = {0: quad(4, 3, 10, 12), 1: quad(10, 3, 25, 12), 2: quad(4, 12, 25, 17)}
    assert result.area_m2_by_class.keys() == expected.keys()
    for code, m2 in expected.items():
        assert result.area_m2_by_class[code] == pytest.approx(m2, rel=1e-6)
    assert result.boundary_m2 == pytest.approx(sum(expected.values()), rel=1e-6)
    assert result.nodata_m2 == 0 and result.outside_raster_m2 == 0
    assert result.area_model == "wgs84_rows"
    # given by its 4 corners, its east-west edges are geodesics, which bulge
    # north of the pixel rows (1.7 m2 each here): the total is still pyproj's
    corners = shapely.box(*rect.bounds)
    assert class_areas(path, corners).covered_m2 == pytest.approx(
        geodesic_area_m2(corners), rel=1e-8
    )


def test_large_pixels_rectangle_is_the_ellipsoidal_quadrangle(tmp_path):
    data = np.arange(400, dtype=np.uint8).reshape(20, 20) % 3
    path = write_raster(tmp_path / "r.tif", data, from_origin(104.0, 28.0, 0.05, 0.05))
    rect = lonlat_box(104.1, 27.3, 104.75, 27.85)  # 13 x 11 whole 0.05 degree pixels

    result = class_areas(path, rect)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(rect), rel=1e-9)


@pytest.mark.parametrize("lat", [0.0, 27.07, 60.0, 89.9])
def test_pixel_row_area_is_the_geodesic_area_of_one_pixel(lat):
    transform = from_origin(105.0, lat + RES_30M, RES_30M, RES_30M)
    (row_area,) = pixel_row_areas_m2(transform, 1)
    pixel = lonlat_box(105.0, lat, 105.0 + RES_30M, lat + RES_30M)
    pixel = shapely.segmentize(pixel, RES_30M / 20)
    assert row_area == pytest.approx(geodesic_area_m2(pixel), rel=1e-7)


def test_rows_shrink_with_latitude_as_expected():
    at_27 = pixel_row_areas_m2(from_origin(105, 27.07, RES_30M, RES_30M), 1)[0]
    at_60 = pixel_row_areas_m2(from_origin(105, 60.0, RES_30M, RES_30M), 1)[0]
    assert at_27 == pytest.approx(798.3, abs=0.1)  # reference table, estimation.md 5
    assert at_60 == pytest.approx(451.5, abs=0.1)


def test_high_latitude_raster_uses_the_smaller_cell_area(tmp_path):
    data = np.ones((10, 10), np.uint8)
    path = write_raster(
        tmp_path / "r.tif",
        data,
        from_origin(20.0, 60.0 + 10 * RES_30M, RES_30M, RES_30M),
    )
    rect = shapely.box(20.0, 60.0, 20.0 + 10 * RES_30M, 60.0 + RES_30M)  # bottom row

    result = class_areas(path, rect)

    row_areas = pixel_row_areas_m2(
        from_origin(20.0, 60.0 + 10 * RES_30M, RES_30M, RES_30M), 10
    )
    assert result.area_m2_by_class[1] == pytest.approx(10 * row_areas[-1], rel=1e-9)
    assert row_areas[-1] == pytest.approx(451.5, abs=0.1)


def test_half_covered_pixels_count_half_or_their_exact_share(tmp_path):
    data = np.array([[1, 2, 3]], np.uint8)
    west, north = 105.0, 27.0 + RES_30M
    path = write_raster(
        tmp_path / "r.tif", data, from_origin(west, north, RES_30M, RES_30M)
    )
    (pixel_m2,) = pixel_row_areas_m2(from_origin(west, north, RES_30M, RES_30M), 1)
    south = north - RES_30M
    # pixel 1: its western half; pixel 3: its southern half (not exactly half:
    # the southern half of a lon/lat pixel is larger); pixel 2: untouched
    west_half = shapely.box(west, south, west + RES_30M / 2, north)
    south_half = shapely.box(
        west + 2 * RES_30M, south, west + 3 * RES_30M, south + RES_30M / 2
    )

    result = class_areas(path, shapely.MultiPolygon([west_half, south_half]))

    assert result.area_m2_by_class[1] == pytest.approx(pixel_m2 / 2, rel=1e-10)
    assert 2 not in result.area_m2_by_class
    assert result.area_m2_by_class[3] == pytest.approx(
        geodesic_area_m2(south_half), rel=1e-9
    )
    assert result.area_m2_by_class[3] > pixel_m2 / 2


def test_diagonal_cut_through_large_pixels_is_exact(tmp_path):
    """Partial 0.05 degree pixels: the second-order term keeps them exact."""
    path = write_raster(
        tmp_path / "r.tif",
        np.ones((10, 10), np.uint8),
        from_origin(105, 28, 0.05, 0.05),
    )
    triangle = shapely.segmentize(
        shapely.Polygon([(105.01, 27.6), (105.42, 27.61), (105.02, 27.97)]), 0.001
    )

    result = class_areas(path, triangle)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(triangle), rel=1e-8)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hectares=st.floats(1, 50),
    lon=st.floats(105.262, 105.345),
    lat=st.floats(27.055, 27.138),
)
def test_random_parcels_match_their_geodesic_area(raster_30m, seed, hectares, lon, lat):
    parcel = star_parcel(np.random.default_rng(seed), lon, lat, hectares)

    result = class_areas(raster_30m, parcel)

    measured = result.covered_m2 + result.nodata_m2
    assert result.outside_raster_m2 == 0
    # the target is 0.01%
    assert measured == pytest.approx(geodesic_area_m2(parcel), rel=1e-6)
    assert measured == pytest.approx(result.boundary_m2, rel=INVARIANT_RTOL)


def test_parcel_on_nodata_reports_it(raster_30m):
    corner = lonlat_box(
        105.25 + 10 * RES_30M,
        27.15 - 60 * RES_30M,
        105.25 + 60 * RES_30M,
        27.15 - 10 * RES_30M,
    )

    result = class_areas(raster_30m, corner)

    on_nodata = lonlat_box(
        105.25 + 10 * RES_30M,
        27.15 - 40 * RES_30M,
        105.25 + 40 * RES_30M,
        27.15 - 10 * RES_30M,
    )
    assert result.nodata_m2 == pytest.approx(geodesic_area_m2(on_nodata), rel=1e-6)
    assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=1e-6)
    assert 255 not in result.area_m2_by_class


def test_long_edges_are_geodesics(tmp_path):
    """A triangle with 800 km edges on a 0.05 degree grid: pyproj's area."""
    data = np.arange(200 * 200, dtype=np.uint32).reshape(200, 200).astype(np.uint8)
    path = write_raster(tmp_path / "r.tif", data, from_origin(100, 30, 0.05, 0.05))
    triangle = shapely.Polygon([(100.5, 20.5), (109.5, 21.5), (103, 29.5)])

    result = class_areas(path, triangle)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(triangle), rel=1e-8)
    assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=1e-8)


def test_multipolygon_with_hole(raster_30m):
    outer = shapely.Point(105.3, 27.1).buffer(0.01, quad_segs=32)
    hole = shapely.Point(105.302, 27.1).buffer(0.004, quad_segs=32)
    island = shapely.Point(105.33, 27.07).buffer(0.003, quad_segs=32)
    boundary = shapely.MultiPolygon([outer.difference(hole), island])

    result = class_areas(raster_30m, boundary)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(boundary), rel=1e-6)


# --- projected rasters --------------------------------------------------------


def projected_raster(path, crs, pixel=30.0, around=(105.3, 27.1), half_km=8.0):
    """A raster in ``crs`` with ``pixel``-unit cells around a lon/lat point."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_crs.transform(*around)
    unit = CRS(crs).axis_info[0].unit_conversion_factor
    half = half_km * 1000 / unit
    n = int(2 * half / pixel)
    rng = np.random.default_rng(3)
    data = rng.integers(1, 4, size=(n, n), dtype=np.uint8)
    return write_raster(
        path, data, from_origin(x - half, y + half, pixel, pixel), crs=crs
    )


@pytest.mark.parametrize(
    ("crs", "model"),
    [
        pytest.param(ALBERS_CLCD, "equal_area", id="CLCD-Albers"),
        ("EPSG:6933", "equal_area"),
        ("EPSG:32648", "jacobian"),  # UTM 48N
        ("EPSG:4523", "jacobian"),  # CGCS2000 3-degree Gauss-Kruger, CM 105E
        ("EPSG:3857", "jacobian"),  # spherical formula on the WGS84 datum
        ("ESRI:54009", "jacobian"),  # Mollweide: PROJ computes it on a sphere
        ("EPSG:2436", "jacobian"),  # Beijing 1954 Gauss-Kruger, Krassowsky
        # a bound CRS (TOWGS84) on another ellipsoid
        pytest.param(ALBERS_KRASSOWSKY, "jacobian", id="Krassowsky-Albers"),
    ],
)
def test_projected_rasters_give_geodesic_areas(tmp_path, crs, model):
    path = projected_raster(tmp_path / "r.tif", crs)
    rng = np.random.default_rng(11)
    with LandCoverRaster(path) as raster:
        assert raster.area_model == model
        for _ in range(5):
            parcel = star_parcel(
                rng,
                105.3 + rng.uniform(-0.02, 0.02),
                27.1 + rng.uniform(-0.02, 0.02),
                rng.uniform(1, 50),
            )
            result = raster.class_areas(parcel)
            assert result.outside_raster_m2 == 0
            assert result.covered_m2 == pytest.approx(
                geodesic_area_m2(parcel), rel=1e-6
            )
            assert len(result.area_m2_by_class) == 3
        big = lonlat_box(105.25, 27.06, 105.35, 27.14)  # ~10 x 9 km
        result = raster.class_areas(big)
        assert result.outside_raster_m2 == 0
        assert result.covered_m2 == pytest.approx(geodesic_area_m2(big), rel=1e-6)


def test_utm_far_from_its_central_meridian(tmp_path):
    """108.9E is 3.9 degrees east of UTM 48N's meridian: scale error 0.2%."""
    path = projected_raster(
        tmp_path / "r.tif", "EPSG:32648", around=(108.9, 27.1), half_km=30
    )
    box = lonlat_box(108.68, 26.93, 109.12, 27.27)

    result = class_areas(path, box)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(box), rel=1e-5)


def test_projected_raster_in_feet(tmp_path):
    path = projected_raster(
        tmp_path / "r.tif", "EPSG:2277", pixel=100.0, around=(-97.7, 30.3)
    )
    parcel = star_parcel(np.random.default_rng(5), -97.7, 30.3, 40)

    result = class_areas(path, parcel)

    assert result.covered_m2 == pytest.approx(geodesic_area_m2(parcel), rel=1e-4)


# --- boundary and raster extent ------------------------------------------------


def test_part_outside_the_raster_is_geodesic(raster_30m):
    west, north = 105.25, 27.15
    east, south = west + 400 * RES_30M, north - 400 * RES_30M
    corners = [
        (east - 0.02, 27.12),
        (east + 0.03, 27.13),
        (east + 0.01, south - 0.02),
        (east - 0.03, south + 0.04),
    ]
    boundary = shapely.Polygon(corners)
    dense = geodesic_polygon(corners)  # for GEOS to cut it where pyproj would
    footprint = lonlat_box(west, south, east, north)

    result = class_areas(raster_30m, boundary)

    expected_outside = geodesic_area_m2(dense.difference(footprint))
    assert result.outside_raster_m2 == pytest.approx(expected_outside, rel=1e-6)
    assert result.covered_m2 == pytest.approx(
        geodesic_area_m2(dense.intersection(footprint)), rel=1e-6
    )
    assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=1e-6)


def test_part_outside_a_projected_raster(tmp_path):
    path = projected_raster(tmp_path / "r.tif", "EPSG:32648", half_km=3)
    box = lonlat_box(105.28, 27.08, 105.36, 27.16)  # raster is ~105.27-105.33

    result = class_areas(path, box)

    assert result.outside_raster_m2 > 0.4 * result.boundary_m2
    assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=1e-5)


def test_boundary_entirely_outside_is_refused(raster_30m):
    with pytest.raises(AreaError) as caught:
        class_areas(raster_30m, shapely.box(100, 20, 100.1, 20.1))
    assert caught.value.code == "no_overlap"


# --- windows, dtypes, masks, progress -----------------------------------------


def test_results_do_not_depend_on_the_window_size(raster_30m):
    boundary = shapely.Point(105.3, 27.1).buffer(0.04, quad_segs=64)
    reference = class_areas(raster_30m, boundary)
    for budget in (128 * 128, 5000, 700, 1):
        result = class_areas(raster_30m, boundary, max_window_pixels=budget)
        assert result.area_m2_by_class.keys() == reference.area_m2_by_class.keys()
        for code, m2 in reference.area_m2_by_class.items():
            assert result.area_m2_by_class[code] == pytest.approx(m2, rel=1e-9)
        assert result.nodata_m2 == pytest.approx(reference.nodata_m2, rel=1e-9)


def test_progress_increases_to_one(raster_30m):
    fractions = []
    boundary = shapely.Point(105.3, 27.1).buffer(0.04)

    class_areas(
        raster_30m, boundary, progress=fractions.append, max_window_pixels=128 * 128
    )

    assert len(fractions) > 3
    assert all(a < b for a, b in itertools.pairwise(fractions))
    assert fractions[-1] == 1.0


@pytest.mark.parametrize(
    ("dtype", "codes", "nodata"),
    [
        ("uint16", [300, 1000, 65535], 0),
        ("int16", [-5, 7, 12000], -9999),
        ("int32", [-(2**30), 5, 2**30], None),
    ],
)
def test_other_integer_types(tmp_path, dtype, codes, nodata):
    data = np.array(codes * 40, dtype=dtype)[:100].reshape(10, 10)
    if nodata is not None:
        data[0, :] = nodata
    transform = from_origin(105.0, 27.0, RES_30M, RES_30M)
    path = write_raster(tmp_path / "r.tif", data, transform, nodata=nodata)

    result = class_areas(
        path, lonlat_box(105.0, 27.0 - 10 * RES_30M, 105.0 + 10 * RES_30M, 27.0)
    )

    rows = pixel_row_areas_m2(transform, 10)
    for code in codes:
        expected = (np.where(data == code, 1, 0).sum(axis=1) * rows).sum()
        assert result.area_m2_by_class[code] == pytest.approx(expected, rel=1e-9)
    assert result.nodata_m2 == pytest.approx(
        0 if nodata is None else 10 * rows[0], rel=1e-9
    )


def test_internal_mask_counts_as_nodata(tmp_path):
    transform = from_origin(105.0, 27.0, RES_30M, RES_30M)
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=10, height=10, count=1, dtype="uint8",
        crs="EPSG:4326", transform=transform,
    ) as dst:  # fmt: skip
        dst.write(np.full((10, 10), 4, np.uint8), 1)
        mask = np.full((10, 10), 255, np.uint8)
        mask[:, :5] = 0
        dst.write_mask(mask)

    result = class_areas(
        path, shapely.box(105.0, 27.0 - 10 * RES_30M, 105.0 + 10 * RES_30M, 27.0)
    )

    assert result.nodata_m2 == pytest.approx(result.area_m2_by_class[4], rel=1e-9)


# --- the compiled loops against plain numpy -------------------------------------


def random_runs(rng, height, width, n):
    """n row runs [c0, c1) sorted by row, several per row, each with a v; rows
    share a v in stretches, as lon/lat rows and equal-area grids do."""
    rows = np.sort(rng.integers(0, height, n))
    ends = np.sort(rng.integers(0, width + 1, (n, 2)), axis=1)
    v = rng.choice([900.0, 901.5, 0.25 * 900.0], n)
    v[rng.random(n) < 0.5] = 900.0
    return rows, ends[:, 0].copy(), ends[:, 1].copy(), v


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.intp])
def test_counting_loops_match_bincount(dtype):
    rng = np.random.default_rng(11)
    n_codes = 7
    index = rng.integers(0, n_codes, (40, 300)).astype(dtype)
    index[5, 100:200] = 3  # long repeats of one code
    runs = random_runs(rng, 40, 300, 200)
    areas = rng.uniform(800, 1000, index.shape)
    counted = np.zeros(n_codes)
    weighed = np.zeros(n_codes)
    for r, c0, c1, v in zip(*runs, strict=True):
        counted += v * np.bincount(index[r, c0:c1], minlength=n_codes)
        w = areas[r, c0:c1]
        weighed += v * np.bincount(index[r, c0:c1], weights=w, minlength=n_codes)

    np.testing.assert_allclose(area._count_runs(index, *runs, n_codes), counted)
    np.testing.assert_allclose(
        area._weigh_runs(index, area._NO_AREAS, *runs, n_codes), counted
    )
    np.testing.assert_allclose(area._weigh_runs(index, areas, *runs, n_codes), weighed)


def test_counting_loops_take_no_runs():
    empty = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    index = np.zeros((1, 1), np.uint8)
    assert not area._count_runs(index, *empty, np.zeros(0), 3).any()


def test_many_codes_are_summed_pixel_by_pixel(raster_30m, monkeypatch):
    boundary = shapely.Point(105.3, 27.1).buffer(0.04, quad_segs=64)
    counted = class_areas(raster_30m, boundary)
    monkeypatch.setattr(area, "_MAX_COUNTED_CODES", 0)

    summed = class_areas(raster_30m, boundary)

    assert summed.area_m2_by_class.keys() == counted.area_m2_by_class.keys()
    for code, m2 in counted.area_m2_by_class.items():
        assert summed.area_m2_by_class[code] == pytest.approx(m2, rel=1e-12)
    assert summed.nodata_m2 == pytest.approx(counted.nodata_m2, rel=1e-12)


def cut_points_reference(ax, ay, bx, by):
    """Each segment's start, its integer crossings sorted by position along it
    (x before y at a corner), then its end."""
    points = []
    for i, (x0, y0, x1, y1) in enumerate(zip(ax, ay, bx, by, strict=True)):
        cuts = []
        for k in range(math.floor(min(x0, x1)) + 1, math.ceil(max(x0, x1))):
            s = (k - x0) / (x1 - x0)
            cuts.append((s, 0, float(k), y0 + s * (y1 - y0)))
        for k in range(math.floor(min(y0, y1)) + 1, math.ceil(max(y0, y1))):
            s = (k - y0) / (y1 - y0)
            cuts.append((s, 1, x0 + s * (x1 - x0), float(k)))
        cuts = sorted(cuts, key=lambda c: c[:2])
        points += [(i, x0, y0), *[(i, x, y) for *_, x, y in cuts], (i, x1, y1)]
    return tuple(np.array(p) for p in zip(*points, strict=True))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.integers(-40, 40).map(lambda k: k / 4)] * 2,
                  *[st.floats(-10, 10, allow_nan=False)] * 2),
        min_size=1, max_size=8,
    ),
    st.booleans(),
)  # fmt: skip
def test_cut_points_lie_in_order_along_each_segment(segments, on_grid):
    # quarter-integer or arbitrary ends: corners, vertical and horizontal edges
    ax, ay, bx, by = (np.array(c, dtype=float) for c in zip(*segments, strict=True))
    if on_grid:
        bx, by = np.round(bx * 2) / 2, np.round(by * 2) / 2

    got = area._cut_points(ax, ay, bx, by)

    for a, b in zip(got, cut_points_reference(ax, ay, bx, by), strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_open_raster_serves_many_parcels(raster_30m):
    rng = np.random.default_rng(2)
    parcels = [star_parcel(rng, 105.3, 27.1, 20) for _ in range(5)]
    with LandCoverRaster(raster_30m) as raster:
        shared = [raster.class_areas(p) for p in parcels]
    assert shared == [class_areas(raster_30m, p) for p in parcels]


# --- many boundaries at once ------------------------------------------------------


def parcels_over(rng, west, south, east, north, n, hectares=(1, 50)):
    """n random star parcels with centres in the box."""
    return [
        star_parcel(
            rng,
            rng.uniform(west, east),
            rng.uniform(south, north),
            rng.uniform(*hectares),
        )
        for _ in range(n)
    ]


def mixed_boundaries(rng):
    """Over raster_30m (105.25 to 105.358 E, 27.042 to 27.15 N): small parcels,
    two of them the same and one overlapping, a MultiPolygon with a hole, a
    parcel across the raster's edge, one on the nodata corner, a large box."""
    parcels = parcels_over(rng, 105.255, 27.047, 105.353, 27.145, 40)
    shifted = shapely.affinity.translate(parcels[0], xoff=0.002)
    with_hole = shapely.MultiPolygon(
        [
            shapely.Polygon(
                lonlat_box(105.30, 27.10, 105.31, 27.11).exterior.coords,
                [lonlat_box(105.303, 27.103, 105.306, 27.106).exterior.coords],
            ),
            shapely.Polygon(lonlat_box(105.32, 27.10, 105.325, 27.105).exterior),
        ]
    )
    across_edge = star_parcel(rng, 105.25, 27.10, 30)
    on_nodata = star_parcel(rng, 105.2525, 27.1475, 3)
    large = lonlat_box(105.26, 27.05, 105.35, 27.14)
    return [*parcels, parcels[0], shifted, with_hole, across_edge, on_nodata, large]


@pytest.mark.parametrize("max_window_pixels", [area.DEFAULT_MAX_WINDOW_PIXELS, 96 * 96])
def test_many_boundaries_get_what_each_gets_alone(raster_30m, max_window_pixels):
    boundaries = mixed_boundaries(np.random.default_rng(21))
    with LandCoverRaster(raster_30m, max_window_pixels=max_window_pixels) as raster:
        together = raster.class_areas_of_each(boundaries)
        alone = [raster.class_areas(b) for b in boundaries]

    assert together == alone  # every float to the last digit


def test_overlapping_parcels_each_get_their_whole_area(raster_30m):
    parcel = star_parcel(np.random.default_rng(4), 105.3, 27.1, 40)
    overlapping = shapely.affinity.translate(parcel, xoff=0.002)
    boundaries = [parcel, overlapping, parcel, parcel.union(overlapping)]
    with LandCoverRaster(raster_30m) as raster:
        results = raster.class_areas_of_each(boundaries)

    assert results[0] == results[2]
    for result, boundary in zip(results, boundaries, strict=True):
        assert result.covered_m2 + result.nodata_m2 == pytest.approx(
            geodesic_area_m2(boundary), rel=1e-6
        )
    assert results[3].covered_m2 < results[0].covered_m2 + results[1].covered_m2


def test_parcels_on_one_block_are_read_in_one_window(raster_30m, monkeypatch):
    # the raster's 128 x 128 blocks: rows and columns 128-255 are one block
    rng = np.random.default_rng(8)
    west, north = 105.25 + 140 * RES_30M, 27.15 - 140 * RES_30M
    parcels = parcels_over(
        rng, west, north - 100 * RES_30M, west + 100 * RES_30M, north, 30, (1, 3)
    )
    reads = []
    with LandCoverRaster(raster_30m) as raster:
        read = raster._read
        monkeypatch.setattr(raster, "_read", lambda w: reads.append(w) or read(w))
        together = raster.class_areas_of_each(parcels)

    assert len(reads) == 1
    assert reads[0].width * reads[0].height <= 128 * 128
    assert together == [class_areas(raster_30m, p) for p in parcels]


def test_parcels_far_apart_are_read_apart(raster_30m, monkeypatch):
    # one band of rows, blocks far apart: the blocks between are not read
    rng = np.random.default_rng(8)
    lat = 27.15 - 60 * RES_30M
    parcels = [
        star_parcel(rng, 105.25 + 20 * RES_30M, lat, 2),
        star_parcel(rng, 105.25 + 380 * RES_30M, lat, 2),
    ]
    reads = []
    with LandCoverRaster(raster_30m) as raster:
        read = raster._read
        monkeypatch.setattr(raster, "_read", lambda w: reads.append(w) or read(w))
        raster.class_areas_of_each(parcels)

    assert len(reads) == 2
    assert sum(w.width * w.height for w in reads) < 2 * 20 * 20


def test_running_sums_restart_per_boundary_as_if_alone():
    rng = np.random.default_rng(12)
    d_cum = rng.normal(0, 900, 60)  # a group's sum need not vanish here
    row = np.sort(rng.integers(0, 5, 60))
    group = np.repeat([0, 1, 2], 20)
    new_group = np.r_[True, group[1:] != group[:-1]]
    new_row = new_group | np.r_[True, row[1:] != row[:-1]]

    def alone(d, rows):  # np.cumsum less the sum before each row, one group
        running = np.cumsum(d)
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        before = np.concatenate([[0.0], running])[first]
        return running - np.repeat(before, np.diff(np.append(first, rows.size)))

    expected = np.concatenate(
        [alone(d_cum[group == g], row[group == g]) for g in range(3)]
    )
    np.testing.assert_array_equal(
        area._running_in_rows(d_cum, new_row, new_group), expected
    )


def lonlat_raster(path, data, **profile):
    return write_raster(
        path, data, from_origin(105.25, 27.15, RES_30M, RES_30M), **profile
    )


def masked_raster(path):
    rng = np.random.default_rng(5)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(105.25, 27.15, RES_30M, RES_30M),
        tiled=True, blockxsize=64, blockysize=64,
    ) as dst:  # fmt: skip
        dst.write(rng.integers(1, 5, (200, 200), dtype=np.uint8), 1)
        mask = np.full((200, 200), 255, np.uint8)
        mask[:, 120:] = 0
        dst.write_mask(mask)
    return path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda path: lonlat_raster(
                path,
                np.random.default_rng(6)
                .choice(np.array([300, 1000, 65535], np.uint16), (200, 200)),
                nodata=65535, tiled=True, blockxsize=64, blockysize=64,
            ),
            id="uint16",
        ),
        pytest.param(masked_raster, id="masked"),
        pytest.param(lambda path: projected_raster(path, "EPSG:32648"), id="UTM"),
        pytest.param(lambda path: projected_raster(path, ALBERS_CLCD), id="Albers"),
    ],
)  # fmt: skip
def test_many_boundaries_on_other_rasters(tmp_path, make):
    path = make(tmp_path / "r.tif")
    rng = np.random.default_rng(9)
    with LandCoverRaster(path) as raster:
        west, south, east, north = raster._to_lonlat(
            shapely.box(0, 0, raster._src.width, raster._src.height)
        ).bounds
        parcels = parcels_over(
            rng, west + 0.005, south + 0.005, east - 0.005, north - 0.005, 25, (1, 20)
        )
        together = raster.class_areas_of_each(parcels)
        alone = [raster.class_areas(p) for p in parcels]

    assert together == alone
    for result in together:
        assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=1e-6)


def test_a_bad_boundary_among_many_is_named_by_its_position(raster_30m):
    parcel = star_parcel(np.random.default_rng(4), 105.3, 27.1, 10)
    bow_tie = shapely.Polygon([(105, 27), (105.01, 27.01), (105.01, 27), (105, 27.01)])
    far_away = shapely.box(100, 20, 100.1, 20.1)
    with LandCoverRaster(raster_30m) as raster:
        with pytest.raises(AreaError) as invalid:
            raster.class_areas_of_each([parcel, parcel, bow_tie])
        with pytest.raises(AreaError) as outside:
            raster.class_areas_of_each([parcel, far_away, parcel])
        with pytest.raises(AreaError) as not_polygon:
            raster.class_areas_of_each([shapely.Point(105.3, 27.1)])

    assert (invalid.value.code, invalid.value.boundary_index) == ("invalid_boundary", 2)
    assert (outside.value.code, outside.value.boundary_index) == ("no_overlap", 1)
    assert (not_polygon.value.code, not_polygon.value.boundary_index) == (
        "invalid_boundary",
        0,
    )


def test_a_boundary_beyond_the_raster_crs_among_many_is_named(tmp_path):
    path = projected_raster(tmp_path / "r.tif", "EPSG:32648")
    rng = np.random.default_rng(4)
    parcels = [star_parcel(rng, 105.3, 27.1, 10) for _ in range(3)]
    # UTM cannot map a point 95 degrees from its central meridian on the equator
    unmappable = shapely.Polygon([(200, 0), (200.1, 0.1), (199.9, 0.1)])
    with LandCoverRaster(path) as raster:
        with pytest.raises(AreaError) as caught:
            raster.class_areas_of_each([*parcels[:2], unmappable, parcels[2]])
        measured = raster.class_areas_of_each(parcels)

    assert (caught.value.code, caught.value.boundary_index) == ("invalid_boundary", 2)
    assert "CRS" in caught.value.message
    assert measured == [class_areas(path, p) for p in parcels]


def test_many_boundaries_report_progress_to_one(raster_30m):
    boundaries = mixed_boundaries(np.random.default_rng(3))
    seen = []
    with LandCoverRaster(raster_30m) as raster:
        assert raster.class_areas_of_each([]) == []
        raster.class_areas_of_each(boundaries, progress=seen.append)

    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) > 2


# --- bad input ---------------------------------------------------------------


def assert_code(code, raster_path, boundary=None):
    with pytest.raises(AreaError) as caught:
        if boundary is None:
            boundary = shapely.box(105, 26.99, 105.01, 27)
        class_areas(raster_path, boundary)
    assert caught.value.code == code
    assert caught.value.message


@pytest.mark.parametrize(
    "path",
    [
        "/vsicurl/http://example.com/a.tif",
        "https://example.com/a.tif",
        "s3://bucket/a.tif",
        "/vsizip//tmp/a.zip/a.tif",
        "/no/such/file.tif",
    ],
)
def test_remote_or_missing_paths_are_refused_before_opening(path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rasterio.open must not be called")

    monkeypatch.setattr(rasterio, "open", fail)
    assert_code("remote_path", path)


def test_directory_and_bytes_paths_are_refused(tmp_path):
    assert_code("remote_path", tmp_path)
    assert_code("remote_path", bytes(tmp_path / "x.tif"))


def test_vrt_is_refused(tmp_path, raster_30m):
    vrt = tmp_path / "r.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="10" rasterYSize="10">'
        '<VRTRasterBand dataType="Byte" band="1">'
        f"<SimpleSource><SourceFilename>{raster_30m}</SourceFilename></SimpleSource>"
        "</VRTRasterBand></VRTDataset>"
    )
    assert_code("unsupported_driver", vrt)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_other_formats_are_unsupported(tmp_path):
    png = tmp_path / "r.png"
    with rasterio.open(
        png, "w", driver="PNG", width=4, height=4, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.ones((4, 4), np.uint8), 1)
    assert_code("unsupported_driver", png)


def test_garbage_and_truncated_files_are_unreadable(tmp_path, raster_30m):
    garbage = tmp_path / "g.tif"
    garbage.write_bytes(b"\x00\x01not a raster" * 10)
    assert_code("unreadable", garbage)
    truncated = tmp_path / "t.tif"
    raw = Path(raster_30m).read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    assert_code("unreadable", truncated, shapely.box(105.26, 27.04, 105.35, 27.14))
    empty = tmp_path / "e.tif"
    empty.write_bytes(b"")
    assert_code("unreadable", empty)


def test_corrupt_tiles_are_unreadable(tmp_path):
    path = tmp_path / "c.tif"
    data = np.random.default_rng(0).integers(0, 9, (256, 256), dtype=np.uint8)
    write_raster(
        path,
        data,
        from_origin(105, 27, RES_30M, RES_30M),
        tiled=True,
        blockxsize=128,
        blockysize=128,
        compress="deflate",
    )
    raw = bytearray(path.read_bytes())
    third = len(raw) // 3
    raw[third : 2 * third] = b"\xff" * third  # random data: the middle is tiles
    path.write_bytes(bytes(raw))
    assert_code(
        "unreadable",
        path,
        shapely.box(105, 27 - 256 * RES_30M, 105 + 256 * RES_30M, 27),
    )


def test_corrupt_tile_read_ahead_is_unreadable(tmp_path):
    """The same through the reader thread, with many windows."""
    path = tmp_path / "c.tif"
    data = np.random.default_rng(0).integers(0, 9, (256, 256), dtype=np.uint8)
    transform = from_origin(105, 27, RES_30M, RES_30M)
    write_raster(
        path,
        data,
        transform,
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="deflate",
    )
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 4000] = b"\xff" * 4000
    path.write_bytes(bytes(raw))
    box = shapely.box(105, 27 - 256 * RES_30M, 105 + 256 * RES_30M, 27)
    with pytest.raises(AreaError) as caught:
        class_areas(path, box, max_window_pixels=16 * 256)
    assert caught.value.code == "unreadable"


def test_huge_dimensions_are_refused_from_the_header(tmp_path):
    path = tmp_path / "huge.tif"
    with rasterio.Env(GDAL_TIFF_OVR_BLOCKSIZE=512), rasterio.open(
        path, "w", driver="GTiff", width=100_000, height=50_000, count=1, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(100, 30, 1e-4, 1e-4),
        tiled=True, compress="deflate", sparse_ok=True,
    ):  # fmt: skip
        pass
    assert path.stat().st_size < 10_000_000
    assert_code("too_large", path)


@pytest.mark.parametrize(
    ("code", "data", "options"),
    [
        ("multiband", np.ones((2, 4, 4), np.uint8), {}),
        ("not_categorical", np.ones((4, 4), np.float32), {}),
        ("no_crs", np.ones((4, 4), np.uint8), {"crs": None}),
        (
            "rotated_grid",
            np.ones((4, 4), np.uint8),
            {"transform": Affine(1e-4, 1e-5, 105, 1e-5, -1e-4, 27)},
        ),
        ("unsupported_crs", np.ones((4, 4), np.uint8), {"crs": "EPSG:4978"}),
    ],
)
def test_unusable_rasters(tmp_path, code, data, options):
    options = {
        "transform": from_origin(105, 27, 0.01, 0.01),
        "crs": "EPSG:4326",
    } | options
    path = write_raster(tmp_path / "r.tif", data, **options)
    assert_code(code, path)


@pytest.mark.parametrize(
    "boundary",
    [
        shapely.Point(105, 27),
        shapely.Polygon(),
        shapely.Polygon(
            [(105, 27), (105.01, 27.01), (105.01, 27), (105, 27.01)]
        ),  # bow tie
        shapely.box(500000, 3000000, 500100, 3000100),  # metres, not degrees
    ],
)
def test_bad_boundaries(raster_30m, boundary):
    assert_code("invalid_boundary", raster_30m, boundary)


def test_error_codes_are_distinct_and_stable():
    codes = {cls.code for cls in AreaError.__subclasses__()}
    assert codes == {
        "remote_path", "unsupported_driver", "unreadable", "too_large", "multiband",
        "not_categorical", "no_crs", "unsupported_crs", "rotated_grid",
        "invalid_boundary", "no_overlap",
    }  # fmt: skip


# --- the real MODIS file and the Bijie city boundary -----------------------------


def test_modis_bijie_areas_add_up(bijie_city):
    city, _ = bijie_city

    result = class_areas(MODIS, city)

    assert result.boundary_m2 / 1e6 == pytest.approx(BIJIE_KM2, rel=5e-4)
    assert result.accounted_m2 == pytest.approx(result.boundary_m2, rel=INVARIANT_RTOL)
    assert result.outside_raster_m2 == 0 and result.nodata_m2 == 0
    km2 = {code: m2 / 1e6 for code, m2 in result.area_m2_by_class.items()}
    # MODIS IGBP over Bijie: cropland/natural mosaic (14) and savannas (9) lead;
    # forests and woody savannas (1-8) are about a ninth of the city
    assert sorted(km2, key=km2.get)[-2:] == [9, 14]
    assert sum(v for k, v in km2.items() if 1 <= k <= 8) == pytest.approx(
        3087, rel=0.01
    )


# exactextract's bundled GEOS can crash the process once GeoDjango has loaded the
# system one, so it runs in a process of its own
EXACTEXTRACT = """
import json, sys
from exactextract import exact_extract
weight = "(coverage_weight=area_spherical_m2)"
ops = [f"unique{weight}", f"frac{weight}", f"count{weight}"]
(row,) = exact_extract(sys.argv[1], [json.load(sys.stdin)], ops)
p = row["properties"]
print(json.dumps({int(u): f * p["count"] for u, f in zip(p["unique"], p["frac"])}))
"""


def test_modis_bijie_against_exactextract(bijie_city):
    """exactextract measures cells on a sphere of R = 6378137 m: +0.40% at 27N.
    Its coverage fractions are exact too, so per class the ratio is constant."""
    pytest.importorskip("exactextract")
    city, feature = bijie_city
    ours = class_areas(MODIS, city)

    out = subprocess.run(
        [sys.executable, "-c", EXACTEXTRACT, str(MODIS)], input=json.dumps(feature),
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip

    sphere = {int(code): m2 for code, m2 in json.loads(out.stdout).items()}
    assert sphere.keys() == ours.area_m2_by_class.keys()
    assert sum(sphere.values()) / ours.covered_m2 == pytest.approx(1.0040, abs=2e-4)
    for code, m2 in ours.area_m2_by_class.items():
        assert sphere[code] / m2 == pytest.approx(1.0040, abs=5e-4)


def test_module_imports_only_numpy_numba_rasterio_shapely_pyproj():
    tree = ast.parse(Path(area.__file__).read_text())
    names = {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    third_party = {name.split(".")[0] for name in names} - sys.stdlib_module_names
    # common: the pure kernel's geodesy (pyproj and shapely only), the one ellipsoid.
    assert third_party == {"numpy", "numba", "rasterio", "shapely", "pyproj", "common"}
