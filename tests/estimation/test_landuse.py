"""Land-use polygons with a class-code field, as the Third National Land Survey
delivers them: a GeoPackage in a CGCS2000 Gauss-Kruger zone."""

import csv
import io
import logging
import math
import struct
import zipfile
from datetime import date
from decimal import Decimal as D

import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common import geodesy
from estimation import landuse, survey_geometry, tasks
from estimation.models import ClassScheme, EstimationRun, Methodology
from estimation.services import runs as run_services
from estimation.services.datasets import upload_landcover_dataset
from registry.roles import Role
from tests.estimation.conftest import PARCEL

pytestmark = pytest.mark.django_db
GEOD = pyproj.Geod(ellps="WGS84")


def _geodesic_ha(geometry) -> D:
    return D(repr(abs(GEOD.geometry_area_perimeter(geometry)[0]))) / 10_000


def _write_landuse(path, pieces):
    """pieces: (DLBM code, lon/lat polygon); written in EPSG:4523."""
    pyogrio.raw.write(
        str(path),
        geometry=shapely.to_wkb(
            _moved(GK_FROM_LONLAT, np.array([polygon for _, polygon in pieces]))
        ),
        field_data=[np.array([code for code, _ in pieces], dtype=object)],
        fields=["DLBM"],
        geometry_type="Polygon",
        crs="EPSG:4523",
        driver="GPKG",
    )
    return path


def test_a_tnls_geopackage_in_gauss_kruger_gives_areas_per_ecosystem(
    staff, owner, project, tmp_path, settings, create_run
):
    settings.MEDIA_ROOT = tmp_path / "media"
    parcel = shapely.from_wkb(bytes(PARCEL.wkb)).geoms[0]
    west, south, east, north = parcel.bounds
    middle = (west + east) / 2
    forest = shapely.box(west - 0.001, south - 0.001, middle, north + 0.001)
    farmland = shapely.box(middle, south - 0.001, east + 0.001, (south + north) / 2)
    orchard = shapely.box(middle, (south + north) / 2, east + 0.001, north + 0.001)
    path = _write_landuse(
        tmp_path / "sandiao.gpkg",
        [("0301", forest), ("0103", farmland), ("0201K", orchard)],
    )
    dataset = upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="三调",
        name_en="Land survey",
        product="tnls",
        year=2020,
        scheme=ClassScheme.objects.get(slug="tnls"),
        uploaded=SimpleUploadedFile("sandiao.gpkg", path.read_bytes()),
        class_field="DLBM",
    )
    assert dataset.description["srid"] == 4523
    assert dataset.description["codes"] == ["0103", "0201K", "0301"]
    run = create_run(
        actor=staff,
        project=project,
        dataset=dataset,
        methodology=Methodology.objects.get(is_default=True),
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    rows = {row.ecosystem: row.area_ha for row in run.results.all()}
    # 0301 and 0201K (an orchard, suffix stripped, first-level 02) are forest.
    expected_forest = _geodesic_ha(parcel.intersection(forest)) + _geodesic_ha(
        parcel.intersection(orchard)
    )
    assert rows["forest"] == pytest.approx(expected_forest, rel=D("1e-4"))
    assert rows["farmland"] == pytest.approx(
        _geodesic_ha(parcel.intersection(farmland)), rel=D("1e-4")
    )
    assert run.covered_area_ha == pytest.approx(run.boundary_area_ha, rel=D("1e-4"))


def test_a_land_use_file_without_the_class_field_is_refused(staff, owner, tmp_path):
    parcel = shapely.from_wkb(bytes(PARCEL.wkb)).geoms[0]
    path = _write_landuse(tmp_path / "x.gpkg", [("0301", parcel)])
    with pytest.raises(ValidationError) as raised:
        upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="x",
            name_en="x",
            product="tnls",
            year=2020,
            scheme=ClassScheme.objects.get(slug="tnls"),
            uploaded=SimpleUploadedFile("x.gpkg", path.read_bytes()),
            class_field="NOPE",
        )
    assert "DLBM" in raised.value.message_dict["class_field"][0]


# Survey layers measured as arrays (issue 16) ---------------------------------

LONLAT_FROM_GK = pyproj.Transformer.from_crs(4523, 4326, always_xy=True)
GK_FROM_LONLAT = pyproj.Transformer.from_crs(4326, 4523, always_xy=True)
CODES = ["0301", "0305", "0201K", "0103", "1203"]


def _moved(transformer, geometries):
    return shapely.transform(
        geometries, lambda xy: np.column_stack(transformer.transform(*xy.T))
    )


def _parcel():
    return shapely.from_wkb(bytes(PARCEL.wkb)).geoms[0]


def _bowtie(x, y, size):
    """A self-intersecting patch, as survey exports hold them."""
    return shapely.Polygon(
        [(x, y), (x + size, y + size), (x + size, y), (x, y + size), (x, y)]
    )


def _survey_layer(*, side=36, size=25.0, extra=()):
    """(codes, GK polygons): a grid of irregular patches over the parcel and
    beyond it, a patch with a hole, a multipolygon, a bowtie inside and one
    outside the parcel, and patches 20 km away that the box filter skips."""
    west, south = GK_FROM_LONLAT.transform(*_parcel().bounds[:2])
    x0, y0 = west - 150, south - 150
    codes, shapes = [], []
    for row in range(side):
        for col in range(side):
            x, y = x0 + col * size, y0 + row * size
            notch = (x + size / 2, y + 0.2 * size * ((row * col) % 3))
            shapes.append(
                shapely.Polygon(
                    [(x, y), notch, (x + size, y), (x + size, y + size), (x, y + size)]
                )
            )
            codes.append(CODES[(row * side + col) % len(CODES)])
    holed = shapely.box(x0 + 300, y0 + 300, x0 + 340, y0 + 340)
    shapes[0] = shapely.Polygon(
        holed.exterior, [shapely.box(x0 + 310, y0 + 310, x0 + 320, y0 + 320).exterior]
    )
    shapes[1] = shapely.MultiPolygon(
        [
            shapely.box(x0 + 200, y0 + 200, x0 + 210, y0 + 210),
            shapely.box(x0 + 220, y0 + 200, x0 + 230, y0 + 210),
        ]
    )
    shapes += [_bowtie(x0 + 400, y0 + 400, 20), _bowtie(x0 - 100, y0 - 100, 20)]
    codes += ["0404", "0404"]
    shapes += [shapely.box(x0 + 20_000, y0, x0 + 20_025, y0 + 25)] * 30
    codes += ["0301"] * 30
    for code, shape in extra:
        codes.append(code)
        shapes.append(shape)
    return codes, np.array(shapes, dtype=object)


def _write_survey(path, codes, shapes, *, srid=4523):
    pyogrio.raw.write(
        str(path),
        geometry=shapely.to_wkb(shapes),
        field_data=[np.array(codes, dtype=object)],
        fields=["DLBM"],
        geometry_type="Unknown",
        crs=f"EPSG:{srid}",
        driver="GPKG",
    )
    return path


def _clipped_one_by_one(codes, shapes, boundary):
    """The reference: every patch repaired, clipped by GEOS and measured by
    pyproj, one at a time."""
    lonlat = shapely.make_valid(_moved(LONLAT_FROM_GK, shapes))
    sums = {}
    for code, shape in zip(codes, shapely.intersection(lonlat, boundary), strict=True):
        if area := geodesy.geodesic_area_m2(shape):
            sums.setdefault(code, []).append(area)
    return {code: math.fsum(areas) for code, areas in sums.items()}


def zipped_shapefile(codes, shapes, folder):
    """The layer as a zipped Shapefile (dltb.zip) in ``folder``."""
    (folder / "shp").mkdir()
    pyogrio.raw.write(
        str(folder / "shp" / "dltb.shp"),
        geometry=shapely.to_wkb(shapes),
        field_data=[np.array(codes, dtype=object)],
        fields=["DLBM"],
        geometry_type="Polygon",
        crs="EPSG:4523",
        driver="ESRI Shapefile",
    )
    archive = folder / "dltb.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in (folder / "shp").iterdir():
            zipped.write(part, part.name)
    return archive


@pytest.fixture
def survey(tmp_path):
    codes, shapes = _survey_layer()
    return codes, shapes, _write_survey(tmp_path / "sandiao.gpkg", codes, shapes)


def test_survey_areas_equal_clipping_each_patch_with_geos(survey):
    """To 1e-8, or 1e-4 m^2 for small sums: pyproj rounds each patch to
    ~1e-5 m^2."""
    codes, shapes, path = survey
    result = landuse.class_areas(path, _parcel(), class_field="DLBM")
    expected = _clipped_one_by_one(codes, shapes, _parcel())
    assert result.area_m2_by_code.keys() == expected.keys()
    for code, area in expected.items():
        assert result.area_m2_by_code[code] == pytest.approx(
            area, rel=1e-8, abs=1e-4
        ), code
    # The bounding-box filter: only patches near the parcel's box were read.
    box = shapely.box(*_moved(GK_FROM_LONLAT, _parcel()).bounds)
    near = np.count_nonzero(shapely.intersects(shapely.envelope(shapes), box))
    assert near <= result.features < near + 150 < len(shapes)


def test_the_quick_path_and_geos_give_the_same_areas(survey, monkeypatch):
    _codes, _shapes, path = survey
    quick = landuse.class_areas(path, _parcel(), class_field="DLBM")
    monkeypatch.setattr(
        survey_geometry, "certainly_valid", lambda features, asked: asked & False
    )
    through_geos = landuse.class_areas(path, _parcel(), class_field="DLBM")
    for code, area in through_geos.area_m2_by_code.items():
        assert quick.area_m2_by_code[code] == pytest.approx(area, rel=1e-10)


def test_small_chunks_give_the_identical_result_and_report_progress(survey):
    _codes, _shapes, path = survey
    whole = landuse.class_areas(path, _parcel(), class_field="DLBM")
    reports = []
    chunked = landuse.class_areas(
        path, _parcel(), class_field="DLBM", chunk_features=97, progress=reports.append
    )
    assert chunked == whole
    assert len(reports) == math.ceil(whole.features / 97) + 1  # each chunk, then done
    assert reports == sorted(reports) and reports[-1] == 1.0


def test_the_order_of_the_patches_does_not_change_the_result(survey, tmp_path):
    codes, shapes, path = survey
    order = np.random.default_rng(3).permutation(len(shapes))
    shuffled = _write_survey(
        tmp_path / "shuffled.gpkg", [codes[i] for i in order], shapes[order]
    )
    assert landuse.class_areas(
        shuffled, _parcel(), class_field="DLBM"
    ) == landuse.class_areas(path, _parcel(), class_field="DLBM")


def test_an_invalid_patch_is_repaired_and_counted_not_dropped(tmp_path):
    west, south = GK_FROM_LONLAT.transform(*_parcel().centroid.coords[0])
    bowtie = _bowtie(west, south, 40)
    outside = _bowtie(west + 5_000, south, 40)  # read (in the box) but not inside
    far = shapely.box(west - 260, south - 260, west - 240, south - 240)
    path = _write_survey(
        tmp_path / "x.gpkg", ["0404", "0404", "0301"], np.array([bowtie, outside, far])
    )
    boundary = shapely.box(
        *_moved(
            LONLAT_FROM_GK,
            shapely.box(west - 300, south - 300, west + 4_900, south + 300),
        ).bounds
    )
    result = landuse.class_areas(path, boundary, class_field="DLBM")
    assert result.repaired == 1
    repaired = shapely.make_valid(_moved(LONLAT_FROM_GK, bowtie))
    assert result.area_m2_by_code["0404"] == pytest.approx(
        geodesy.geodesic_area_m2(repaired), abs=1e-4
    )
    assert result.area_m2_by_code["0404"] > 700  # two triangles of 400 m^2


def test_a_progress_report_that_raises_stops_before_the_next_chunk(survey, monkeypatch):
    _codes, _shapes, path = survey
    parsed = []
    parse = survey_geometry.parse_wkb
    monkeypatch.setattr(
        survey_geometry, "parse_wkb", lambda *a: parsed.append(1) or parse(*a)
    )

    def cancelled(fraction):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        landuse.class_areas(
            path, _parcel(), class_field="DLBM", chunk_features=97, progress=cancelled
        )
    # the first chunk's report stops it: only the chunks already being
    # measured beside the first are finished
    assert parsed == [1] * landuse.MEASURING_THREADS


def test_a_zipped_shapefile_and_a_lonlat_layer_give_the_same_areas(survey, tmp_path):
    codes, shapes, path = survey
    expected = landuse.class_areas(path, _parcel(), class_field="DLBM")
    archive = zipped_shapefile(codes, shapes, tmp_path)
    lonlat = _write_survey(
        tmp_path / "lonlat.gpkg", codes, _moved(LONLAT_FROM_GK, shapes), srid=4490
    )
    for other in (archive, lonlat):
        result = landuse.class_areas(other, _parcel(), class_field="DLBM")
        assert result.area_m2_by_code.keys() == expected.area_m2_by_code.keys()
        for code, area in expected.area_m2_by_code.items():
            assert result.area_m2_by_code[code] == pytest.approx(area, rel=1e-9)


def test_describe_reads_the_count_and_codes_in_bulk(survey, monkeypatch):
    codes, shapes, path = survey
    description = landuse.describe(path, class_field="DLBM")
    assert description["features"] == len(shapes)
    assert description["codes"] == sorted(set(codes))
    assert description["srid"] == 4523 and description["crs"] == "EPSG:4523"
    assert len(description["extent"]) == 4
    with pytest.raises(ValidationError) as missing:
        landuse.describe(path, class_field="dlbm")
    assert "DLBM" in missing.value.message_dict["class_field"][0]
    monkeypatch.setattr(landuse, "MAX_FEATURES", len(shapes) - 1)
    with pytest.raises(ValidationError) as too_many:
        landuse.describe(path, class_field="DLBM")
    assert too_many.value.code == "too_large"


def test_reading_a_geopackage_from_a_newer_gdal_logs_no_error(survey, caplog):
    """GeoDjango's GDAL 3.6 logs "may only be partially supported" at ERROR for
    a GeoPackage 1.4 (as pyogrio's GDAL writes); land use never goes through it."""
    _codes, _shapes, path = survey
    with caplog.at_level(logging.WARNING):
        landuse.describe(path, class_field="DLBM")
        landuse.class_areas(path, _parcel(), class_field="DLBM")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# The compiled loops one by one ----------------------------------------------


def _parsed(shapes, **wkb_options):
    data = [shapely.to_wkb(shape, **wkb_options) for shape in shapes]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])]
    buffer = np.frombuffer(b"".join(data), dtype=np.uint8)
    return survey_geometry.parse_wkb(buffer, offsets, np.zeros(len(data), bool))


@pytest.mark.parametrize(
    "options",
    [
        {"byte_order": 0},
        {"byte_order": 1, "flavor": "iso"},
        {"byte_order": 1, "include_srid": True},
    ],
)
def test_wkb_is_parsed_in_either_byte_order_with_z_and_srid(options):
    square = shapely.box(0, 0, 1, 1)
    holed = shapely.Polygon(square.exterior, [shapely.box(0.2, 0.2, 0.4, 0.4).exterior])
    multi = shapely.MultiPolygon([square, shapely.box(3, 3, 4, 5)])
    with_z = shapely.force_3d(shapely.box(5, 5, 6, 7), 9.0)
    shapes = [square, holed, multi, with_z, shapely.Polygon(), shapely.Point(1, 1)]
    shapes = [shapely.set_srid(shape, 4523) for shape in shapes]
    features = _parsed(shapes, **options)
    assert features.kind.tolist() == [1, 1, 1, 1, 0, 2]
    expected = shapely.get_coordinates(np.array(shapes[:4]))
    assert np.array_equal(np.column_stack([features.x, features.y]), expected)
    assert np.diff(features.feature_offsets).tolist() == [1, 1, 2, 1, 0, 0]
    assert features.bounds[2].tolist() == [0, 0, 4, 5]


@pytest.mark.parametrize(
    ("shape", "valid"),
    [
        (shapely.box(0, 0, 1, 1), True),
        (shapely.Polygon([(0, 0), (2, 0), (1, 0), (1, 1)]), False),  # a spike
        (shapely.Polygon([(0, 0), (2, 0), (1, 0)]), False),  # nothing but a spike
        (_bowtie(0, 0, 1), False),
        (shapely.Polygon([(0, 0), (1, 0), (1, 0), (1, 1), (0, 0)]), False),  # repeat
        (
            shapely.Polygon(
                shapely.box(0, 0, 4, 4).exterior,
                [shapely.box(1, 1, 2, 2).exterior],
            ),
            True,
        ),
        (  # the hole touches the shell: GEOS decides
            shapely.Polygon(
                shapely.box(0, 0, 4, 4).exterior,
                [shapely.box(0, 1, 2, 2).exterior],
            ),
            False,
        ),
        (  # the hole lies outside its shell
            shapely.Polygon(
                shapely.box(0, 0, 4, 4).exterior,
                [shapely.box(5, 5, 6, 6).exterior],
            ),
            False,
        ),
        (
            shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)]),
            True,
        ),
        (  # overlapping parts
            shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)]),
            False,
        ),
        (  # one part inside another
            shapely.MultiPolygon([shapely.box(0, 0, 4, 4), shapely.box(1, 1, 2, 2)]),
            False,
        ),
    ],
)
def test_only_certainly_valid_patches_skip_geos(shape, valid):
    features = _parsed([shape])
    assert survey_geometry.certainly_valid(features, np.ones(1, bool))[0] == valid
    assert not valid or shape.is_valid


def test_areas_are_summed_as_whole_square_millimetres():
    sums = np.zeros(2, dtype=np.int64)
    survey_geometry.add_square_millimetres(
        np.array([0.0000006, 2.5000004, 1.0]), np.array([0, 0, 1]), sums
    )
    assert sums.tolist() == [2_500_001, 1_000_000]


def test_a_patch_wider_than_the_quick_extent_goes_to_geos(tmp_path, monkeypatch):
    """Its edges may bend between the layer's plane and lon/lat by more than
    the margin the grid keeps from the boundary."""
    west, south = 35_530_000.0, 3_000_000.0
    wide = shapely.box(west, south, west + 6_000, south + 100)
    narrow = shapely.box(west, south + 200, west + 4_000, south + 300)
    path = _write_survey(
        tmp_path / "wide.gpkg", ["0301", "0305"], np.array([wide, narrow])
    )
    boundary = _moved(
        LONLAT_FROM_GK,
        shapely.box(west - 5_000, south - 5_000, west + 11_000, south + 5_000),
    )
    asked = []
    check = survey_geometry.certainly_valid
    monkeypatch.setattr(
        survey_geometry,
        "certainly_valid",
        lambda features, candidates: (
            asked.append(candidates.tolist()) or check(features, candidates)
        ),
    )
    result = landuse.class_areas(path, boundary, class_field="DLBM")
    assert asked == [[False, True]]
    assert result.area_m2_by_code["0301"] == pytest.approx(
        geodesy.geodesic_area_m2(_moved(LONLAT_FROM_GK, wide)), abs=1e-3
    )


def test_the_boundary_grid_places_boxes_inside_outside_or_near_the_edge():
    ring = shapely.get_coordinates(shapely.box(0, 0, 1000, 1000).exterior)
    grid = survey_geometry.BoundaryGrid(
        ring[:, 0], ring[:, 1], np.array([0, len(ring)]), margin=1.0, cells=64
    )
    placed = grid.place(
        np.array(
            [
                [100, 100, 200, 200],  # inside
                [1500, 100, 1600, 200],  # outside
                [990, 100, 1010, 200],  # across the edge
                [100, 998.5, 200, 999.5],  # inside, but within the margin
                [np.nan] * 4,  # no geometry
            ]
        )
    )
    inside, outside, near = (
        survey_geometry.INSIDE,
        survey_geometry.OUTSIDE,
        survey_geometry.UNDECIDED,
    )
    assert placed.tolist() == [inside, outside, near, near, outside]


def test_interpolated_vertices_match_proj_and_fall_back_to_it():
    window = (35_520_000.0, 2_990_000.0, 35_560_000.0, 3_030_000.0)
    moved = survey_geometry.InterpolatedTransform(
        LONLAT_FROM_GK.transform, window, spacing=2_000.0
    )
    rng = np.random.default_rng(1)
    x = rng.uniform(window[0] - 30_000, window[2], 10_000)  # some beyond the window
    y = rng.uniform(window[1], window[3], 10_000)
    lon, lat = moved(x, y)
    exact_lon, exact_lat = LONLAT_FROM_GK.transform(x, y)
    assert moved.usable
    assert np.abs(lon - exact_lon).max() < 1e-11
    assert np.abs(lat - exact_lat).max() < 1e-11
    strict = survey_geometry.InterpolatedTransform(
        LONLAT_FROM_GK.transform, window, spacing=2_000.0, tolerance=-1.0
    )
    assert not strict.usable
    assert np.array_equal(strict(x, y)[0], exact_lon)


# Survey runs: second-level codes, repaired patches, cancelling ---------------


@pytest.fixture
def survey_dataset(staff, owner, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    west, south = GK_FROM_LONLAT.transform(*_parcel().centroid.coords[0])
    codes, shapes = _survey_layer(
        extra=[("0201", shapely.box(west, south, west + 30, south + 30))]
    )
    path = _write_survey(tmp_path / "sandiao.gpkg", codes, shapes)
    return upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="三调",
        name_en="Land survey",
        product="tnls",
        year=2020,
        scheme=ClassScheme.objects.get(slug="tnls"),
        uploaded=SimpleUploadedFile("sandiao.gpkg", path.read_bytes()),
        class_field="DLBM",
    )


@pytest.fixture
def survey_run(staff, project, survey_dataset, create_run):
    def make():
        return create_run(
            actor=staff,
            project=project,
            dataset=survey_dataset,
            methodology=Methodology.objects.get(is_default=True),
            period_start=date(2021, 1, 1),
            period_end=date(2021, 12, 31),
        )

    return make


def test_a_survey_run_keeps_its_second_level_codes_for_the_table_and_csv(
    survey_run, staff, client
):
    run = survey_run()
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    rows = {row.code: row for row in run.code_areas.all()}
    assert list(rows) == ["0103", "0201", "0301", "0305", "0404", "1203"]
    assert rows["0301"].name == "乔木林地"
    assert rows["0305"].name == "灌木林地"
    assert rows["0201"].name == "园地 Orchards and plantations"  # its first level
    by_code = {
        code: D(str(m2))
        for code, m2 in landuse.class_areas(
            run.dataset.file.path, _parcel(), class_field="DLBM"
        ).area_m2_by_code.items()
    }
    # 0201K folds into 0201; areas are Decimal hectares to 0.0001.
    assert rows["0201"].area_ha == pytest.approx(
        (by_code["0201"] + by_code["0201K"]) / 10_000, abs=D("0.0001")
    )
    assert sum(row.area_ha for row in rows.values()) == pytest.approx(
        run.covered_area_ha, abs=D("0.001")
    )
    assert run.repaired_patches == 1
    client.force_login(staff)
    page = client.get(reverse("estimation:run-detail", args=[run.pk])).content.decode()
    assert "data-survey-codes" in page and "乔木林地" in page
    assert "data-repaired-patches>1<" in page
    body = client.get(reverse("estimation:run-csv", args=[run.pk])).content.decode()
    lines = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert ["repaired_invalid_patches", "1"] in lines
    header = lines.index(["survey_code", "survey_class", "area_ha"])
    assert lines[header + 3] == ["0301", "乔木林地", str(rows["0301"].area_ha)]
    api = _api(staff).get(f"/api/v1/estimation-runs/{run.pk}/").json()
    assert api["repaired_patches"] == 1
    assert {
        "code": "0305",
        "name": "灌木林地",
        "area_ha": str(rows["0305"].area_ha),
    } in (api["code_areas"])


def test_a_run_cancelled_while_it_measures_stops_at_the_next_chunk(
    survey_run, staff, monkeypatch
):
    monkeypatch.setattr(landuse, "CHUNK_FEATURES", 97)
    measured = []
    batch = landuse._Measure.batch

    def measure(self, geometry, codes):
        batch(self, geometry, codes)
        measured.append(len(geometry))

    report = run_services._Progress.__call__

    def cancel_then_report(self, fraction):
        if EstimationRun.objects.get().status == EstimationRun.Status.RUNNING:
            # staff pressed "cancel" while the first chunks were measured
            run_services.cancel_run(actor=staff, run=EstimationRun.objects.get())
        report(self, fraction)

    monkeypatch.setattr(landuse._Measure, "batch", measure)
    monkeypatch.setattr(run_services._Progress, "__call__", cancel_then_report)
    run = survey_run()
    run.refresh_from_db()
    # the cancellation is seen at the first progress write: the chunks being
    # measured beside the first finish, none after
    chunks = math.ceil(run.dataset.description["features"] / 97)
    assert measured[:1] == [97] and len(measured) <= landuse.MEASURING_THREADS
    assert len(measured) < chunks
    assert run.status == EstimationRun.Status.CANCELLED
    assert run.cancelled_by == staff and run.finished_at is not None
    assert not run.results.exists() and not run.code_areas.exists()
    assert run.covered_area_ha is None


def _api(user):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    token, _created = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def queued_run(run_for, monkeypatch):
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = run_for()
    monkeypatch.undo()
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.QUEUED
    return run


def test_staff_cancel_a_queued_run_from_its_page_and_it_never_starts(
    queued_run, staff, client
):
    client.force_login(staff)
    page = client.get(reverse("estimation:run-detail", args=[queued_run.pk]))
    assert b"data-run-cancel" in page.content
    client.post(reverse("estimation:run-cancel", args=[queued_run.pk]))
    run_services.execute_run(run_id=queued_run.pk)
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.CANCELLED
    assert queued_run.attempts == 0
    page = client.get(reverse("estimation:run-detail", args=[queued_run.pk]))
    assert b"data-run-cancelled" in page.content
    assert b"data-run-cancel>" not in page.content


def test_a_finished_run_cannot_be_cancelled(run_for, staff, client):
    run = run_for()
    client.force_login(staff)
    response = client.post(reverse("estimation:run-cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert "only those can be cancelled" in response.content.decode()
    reply = _api(staff).post(f"/api/v1/estimation-runs/{run.pk}/cancel/")
    assert reply.status_code == 409 and reply.json()["code"] == "run_not_active"


def test_cancelling_through_the_api_and_who_may(queued_run, staff, make_user, owner):
    outsider = make_user(role=Role.BUREAU_STAFF)
    member = make_user(organization=owner)
    for user in (outsider, member):
        with pytest.raises(PermissionDenied):
            run_services.cancel_run(actor=user, run=queued_run)
    reply = _api(staff).post(f"/api/v1/estimation-runs/{queued_run.pk}/cancel/")
    assert reply.status_code == 200 and reply.json()["status"] == "cancelled"


def test_an_unreadable_patch_fails_the_measurement_with_its_own_code(tmp_path):
    west, south = GK_FROM_LONLAT.transform(*_parcel().centroid.coords[0])
    arc = [(west, south), (west + 20, south + 20), (west + 40, south)]
    arc += [(west + 20, south - 20), (west, south)]
    curved = (  # a CurvePolygon of one CircularString, which GEOS cannot read
        struct.pack("<BII", 1, 10, 1)
        + struct.pack("<BII", 1, 8, len(arc))
        + b"".join(struct.pack("<dd", *point) for point in arc)
    )
    path = tmp_path / "curved.gpkg"
    pyogrio.raw.write(
        str(path),
        geometry=np.array([curved], dtype=object),
        field_data=[np.array(["0301"], dtype=object)],
        fields=["DLBM"],
        geometry_type="Unknown",
        crs="EPSG:4523",
        driver="GPKG",
    )
    with pytest.raises(landuse.LandUseError) as raised:
        landuse.class_areas(path, _parcel(), class_field="DLBM")
    assert raised.value.code == "unreadable_polygon"
