"""Large runs measured in parts (raster tiles, ranges of survey patches) on
several workers, then added up: the very numbers one pass gives, to the last
digit (issue: scale beyond one machine). Here Celery runs eagerly, so the
parts and the chord's finish run one after another in this process; the
production-stack stage runs them on a real worker
(tests/estimation/test_reliability_worker.py)."""

import itertools
from datetime import date

import numpy as np
import pytest
import rasterio
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rasterio.transform import from_origin
from rest_framework.test import APIClient

from estimation import area, landuse, tasks
from estimation.models import ClassScheme, Coefficient, EstimationRun, Methodology
from estimation.services import measurement
from estimation.services import runs as run_services
from estimation.services.datasets import upload_landcover_dataset
from tests.estimation.conftest import write_landcover
from tests.estimation.test_landuse import (
    _parcel,
    _survey_layer,
    _write_survey,
    zipped_shapefile,
)
from tests.registry.projects import make_project

# Reaches beyond the raster's east edge (105.71), so that the part outside
# the map is measured after the parts too.
PENTAGON = shapely.Polygon(
    [
        (105.595, 27.05),
        (105.68, 27.045),
        (105.72, 27.10),
        (105.66, 27.155),
        (105.60, 27.13),
        (105.595, 27.05),
    ]
)
# InVEST's test pools (t C/ha: above, below, soil, dead), grassland added.
POOLS = {
    "forest": (15, 10, 60, 1),
    "farmland": (5, 3, 20, 0),
    "grassland": (2, 1, 15, 0),
}
SMALL_WINDOWS = 16 * 16  # pixels: the 16-pixel blocks one at a time


def _mottled(shape, seed=7):
    """Forest, farmland, grassland and no data, speckled pixel by pixel, so
    that every window adds many different floats."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([2, 12, 10, 255], np.uint8), size=shape)


@pytest.fixture
def mottled_raster(tmp_path):
    return write_landcover(
        tmp_path / "mottled.tif", width=120, height=120, codes=_mottled((120, 120))
    )


def _utm_raster(path):
    """The same kind of map in UTM 48N (the engine's Jacobian path)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=130,
        height=150,
        count=1,
        dtype="uint8",
        crs="EPSG:32648",
        transform=from_origin(558_000, 3_006_000, 90, 90),
        nodata=255,
        tiled=True,
        blockxsize=16,
        blockysize=16,
    ) as dst:
        dst.write(_mottled((150, 130), seed=3), 1)
    return path


@pytest.mark.parametrize("kind", ["lonlat", "utm"])
def test_raster_tiles_add_up_to_one_pass_to_the_last_digit(
    kind, mottled_raster, tmp_path
):
    path = mottled_raster if kind == "lonlat" else _utm_raster(tmp_path / "utm.tif")
    with area.LandCoverRaster(path, max_window_pixels=SMALL_WINDOWS) as raster:
        whole = raster.class_areas(PENTAGON)
        tiles = raster.row_tiles(PENTAGON, max_pixels=1)  # a band each
        assert len(tiles) >= 4
        rows = [row for tile in tiles for row in range(*tile)]
        assert rows == sorted(set(rows))  # no row measured twice
        sums = area.WindowSums(None)
        for tile in reversed(tiles):  # parts come back in any order
            part = raster.class_area_sums(PENTAGON, rows=tile).to_json()
            sums.merge(area.WindowSums.from_json(part))
        outside_m2, boundary_m2 = raster.boundary_areas_m2(PENTAGON)
        split = raster.class_areas_from(
            sums, outside_m2=outside_m2, boundary_m2=boundary_m2
        )
        bigger = raster.row_tiles(PENTAGON, max_pixels=3 * 16 * 120)
    assert split == whole
    assert whole.outside_raster_m2 > 0 and whole.nodata_m2 > 0
    assert len(whole.area_m2_by_class) == 3
    assert len(bigger) < len(tiles) and bigger[0][0] == tiles[0][0]
    assert bigger[-1][1] == tiles[-1][1]


def test_a_tile_must_start_on_a_band(mottled_raster):
    with area.LandCoverRaster(mottled_raster, max_window_pixels=SMALL_WINDOWS) as r:
        first, second = r.row_tiles(PENTAGON, max_pixels=1)[:2]
        with pytest.raises(ValueError, match="not a tile"):
            r.class_area_sums(PENTAGON, rows=(first[0] + 1, second[1]))


@pytest.fixture
def survey_path(tmp_path):
    codes, shapes = _survey_layer()
    return _write_survey(tmp_path / "sandiao.gpkg", codes, shapes), codes, shapes


def test_ranges_of_survey_patches_add_up_to_one_pass_exactly(survey_path, tmp_path):
    path, codes, shapes = survey_path
    whole = landuse.class_areas(path, _parcel(), class_field="DLBM")
    ranges = landuse.fid_ranges(path, max_features=200)
    assert ranges[0][0] == 1 and ranges[-1][1] == len(codes) + 1
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    parts = [
        landuse.LandUseAreas.from_json(
            landuse.class_areas(
                path, _parcel(), class_field="DLBM", fids=fids
            ).to_json()
        )
        for fids in reversed(ranges)
    ]
    assert landuse.LandUseAreas.merged(parts) == whole
    assert whole.repaired == 1 and sum(p.repaired for p in parts) == 1
    assert sum(p.features for p in parts) == whole.features

    # A zipped Shapefile numbers its patches from 0.
    archive = zipped_shapefile(codes, shapes, tmp_path)
    shp_ranges = landuse.fid_ranges(archive, max_features=300)
    assert shp_ranges[0][0] == 0 and shp_ranges[-1][1] == len(codes)
    from_shp = landuse.LandUseAreas.merged(
        landuse.class_areas(archive, _parcel(), class_field="DLBM", fids=fids)
        for fids in shp_ranges
    )
    assert from_shp == landuse.class_areas(archive, _parcel(), class_field="DLBM")


# Runs ---------------------------------------------------------------------------


@pytest.fixture
def small_windows(settings):
    settings.ESTIMATION_WINDOW_PIXELS = SMALL_WINDOWS


@pytest.fixture
def pentagon_project(staff, owner):
    return make_project(
        actor=staff, owner=owner, geometry=GEOSGeometry(PENTAGON.wkt, srid=4326)
    )


def _upload(staff, owner, path, *, scheme, product, name, class_field=""):
    return upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh=name,
        name_en=name,
        product=product,
        year=2019,
        scheme=ClassScheme.objects.get(slug=scheme),
        uploaded=SimpleUploadedFile(path.name, path.read_bytes()),
        class_field=class_field,
    )


@pytest.fixture
def mottled_dataset(staff, owner, mottled_raster, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return _upload(
        staff, owner, mottled_raster, scheme="modis-igbp", product="modis-igbp",
        name="mottled",
    )  # fmt: skip


def _ended_run(create_run, staff, project, dataset, **overrides):
    arguments = {
        "actor": staff,
        "project": project,
        "dataset": dataset,
        "methodology": Methodology.objects.get(is_default=True),
        "period_start": date(2021, 1, 1),
        "period_end": date(2025, 12, 31),
    }
    arguments.update(overrides)
    run = create_run(**arguments)
    run.refresh_from_db()
    return run


def _run(create_run, staff, project, dataset, **overrides):
    run = _ended_run(create_run, staff, project, dataset, **overrides)
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    return run


def _table(run: EstimationRun) -> dict:
    """Everything a run stores that the measurement decides."""
    fields = [
        "boundary_area_ha",
        "covered_area_ha",
        "nodata_area_ha",
        "outside_area_ha",
        "unmapped_codes",
        "repaired_patches",
        "total_t_c_per_year",
        "total_t_co2e_per_year",
        "total_t_co2e_period",
        "total_value_cny_per_year",
    ]
    return {
        **{name: getattr(run, name) for name in fields},
        "rows": list(
            run.results.order_by("rank").values_list(
                "ecosystem", "area_ha", "share", "sink_t_co2e_period"
            )
        ),
        "codes": list(run.code_areas.order_by("code").values_list("code", "area_ha")),
    }


def test_a_large_raster_run_is_measured_in_parts_with_the_same_table(
    small_windows, staff, pentagon_project, mottled_dataset, create_run, settings
):
    settings.ESTIMATION_PART_PIXELS = 10**9
    whole = _run(create_run, staff, pentagon_project, mottled_dataset)
    assert whole.parts_total == 0
    settings.ESTIMATION_PART_PIXELS = 1  # a band of 16 rows per part
    split = _run(create_run, staff, pentagon_project, mottled_dataset)
    assert split.parts_total >= 4
    assert split.parts_done == split.parts_total and split.progress == 100
    assert _table(split) == _table(whole)
    assert whole.outside_area_ha > 0 and whole.nodata_area_ha > 0
    assert split.landcover_picture  # drawn as for any raster run


def test_a_run_in_parts_shows_the_share_of_parts_done_as_its_progress(
    small_windows, staff, pentagon_project, mottled_dataset, create_run, settings,
    monkeypatch,
):  # fmt: skip
    settings.ESTIMATION_PART_PIXELS = 1
    seen = []
    measure_part = measurement.measure_part

    def noting_progress(dataset, boundary, part, progress):
        seen.append(EstimationRun.objects.values_list("progress", "parts_done").get())
        return measure_part(dataset, boundary, part, progress)

    monkeypatch.setattr(measurement, "measure_part", noting_progress)
    run = _run(create_run, staff, pentagon_project, mottled_dataset)
    total = run.parts_total
    assert seen == [(done * 99 // total, done) for done in range(total)]


def test_a_large_survey_run_is_measured_in_parts_with_the_same_table(
    staff, owner, project, tmp_path, settings, create_run, survey_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    path, _codes, _shapes = survey_path
    dataset = _upload(
        staff, owner, path, scheme="tnls", product="tnls", name="三调",
        class_field="DLBM",
    )  # fmt: skip
    whole = _run(create_run, staff, project, dataset)
    settings.ESTIMATION_PART_FEATURES = 250
    split = _run(create_run, staff, project, dataset)
    assert split.parts_total == 6 and split.parts_done == 6
    assert _table(split) == _table(whole)
    assert whole.repaired_patches == 1 and len(_table(whole)["codes"]) >= 4


def test_a_stock_difference_run_splits_both_maps_and_keeps_them_apart(
    small_windows, staff, owner, pentagon_project, mottled_dataset, create_run,
    settings, tmp_path,
):  # fmt: skip
    # The baseline had forest where the current map has farmland.
    baseline_codes = np.where(_mottled((120, 120)) == 12, 2, _mottled((120, 120)))
    baseline = _upload(
        staff, owner,
        write_landcover(tmp_path / "base.tif", width=120, height=120,
                        codes=baseline_codes.astype(np.uint8)),
        scheme="modis-igbp", product="modis-igbp", name="baseline",
    )  # fmt: skip
    stock = Methodology.objects.create(
        slug="invest-parts",
        name_zh="InVEST",
        name_en="InVEST pools",
        kind=Methodology.Kind.STOCK_DIFFERENCE,
        citation="natcap/invest tests/test_carbon.py pools",
    )
    for ecosystem, pools in POOLS.items():
        for pool, value in zip(("above", "below", "soil", "dead"), pools, strict=True):
            Coefficient.objects.create(
                methodology=stock, ecosystem=ecosystem, pool=pool, value=value,
                unit="t_c", basis="stock_per_ha", citation="InVEST test",
                status="verified",
            )  # fmt: skip
    arguments = {"methodology": stock, "baseline_dataset": baseline}
    settings.ESTIMATION_PART_PIXELS = 10**9
    whole = _run(create_run, staff, pentagon_project, mottled_dataset, **arguments)
    settings.ESTIMATION_PART_PIXELS = 1
    split = _run(create_run, staff, pentagon_project, mottled_dataset, **arguments)
    assert split.parts_total >= 8  # both maps' tiles
    assert _table(split) == _table(whole)
    assert whole.total_t_co2e_period < 0  # forest lost: the roles were not mixed


def test_a_part_that_fails_fails_the_run_and_nothing_is_stored(
    small_windows, staff, pentagon_project, mottled_dataset, create_run, settings,
    monkeypatch, caplog,
):  # fmt: skip
    settings.ESTIMATION_PART_PIXELS = 1
    measured = []
    measure_part = measurement.measure_part

    def second_part_breaks(dataset, boundary, part, progress):
        measured.append(part)
        if len(measured) == 2:
            raise OSError("disk read error")
        return measure_part(dataset, boundary, part, progress)

    monkeypatch.setattr(measurement, "measure_part", second_part_breaks)
    run = _ended_run(create_run, staff, pentagon_project, mottled_dataset)
    assert run.status == EstimationRun.Status.FAILED
    assert run.error_code == "io_error" and run.error_message
    assert len(measured) == 2  # the parts after it saw the run had failed
    assert run.parts_done == 1 < run.parts_total
    assert not run.results.exists() and run.covered_area_ha is None
    assert "failed" in caplog.text


def test_a_run_cancelled_during_its_parts_stores_nothing(
    small_windows, staff, pentagon_project, mottled_dataset, create_run, settings,
    monkeypatch,
):  # fmt: skip
    settings.ESTIMATION_PART_PIXELS = 1
    measured = []
    measure_part = measurement.measure_part

    def cancel_after_the_first(dataset, boundary, part, progress):
        sums = measure_part(dataset, boundary, part, progress)
        measured.append(part)
        run_services.cancel_run(actor=staff, run=EstimationRun.objects.get())
        return sums

    monkeypatch.setattr(measurement, "measure_part", cancel_after_the_first)
    run = _ended_run(create_run, staff, pentagon_project, mottled_dataset)
    assert run.status == EstimationRun.Status.CANCELLED
    assert len(measured) == 1
    assert not run.results.exists() and run.covered_area_ha is None


def test_parts_of_an_attempt_that_was_handed_on_are_not_measured(
    small_windows, staff, pentagon_project, mottled_dataset, create_run, settings
):
    settings.ESTIMATION_PART_PIXELS = 1
    run = _run(create_run, staff, pentagon_project, mottled_dataset)
    part = {"rows": [0, 16]}
    stale = run.attempts - 1
    assert (
        run_services.measure_run_part(
            run_id=run.pk, attempt=stale, role="current", part=part
        )
        is None
    )
    finished = run_services.finish_run_in_parts(
        run_id=run.pk, attempt=stale, roles=["current"], sums=[{}]
    )
    assert finished.status == EstimationRun.Status.SUCCEEDED
    assert _table(finished) == _table(run)


def test_a_small_map_is_never_opened_to_plan_parts(
    mottled_dataset, pentagon_project, settings, monkeypatch
):
    settings.ESTIMATION_PART_PIXELS = 120 * 120  # the whole map fits one part

    def must_not_open(*args, **kwargs):
        raise AssertionError("opened")

    monkeypatch.setattr(area, "LandCoverRaster", must_not_open)
    assert measurement.plan_parts(mottled_dataset, pentagon_project.boundary) == [
        {"rows": None}
    ]
    settings.ESTIMATION_PART_PIXELS = 120 * 120 - 1
    with pytest.raises(AssertionError, match="opened"):
        measurement.plan_parts(mottled_dataset, pentagon_project.boundary)


def test_a_part_beats_but_leaves_the_percent_to_the_parts_count(
    run_for, settings, monkeypatch
):
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = run_for()
    run_services._claim(run.pk)
    EstimationRun.objects.filter(pk=run.pk).update(
        progress=40, heartbeat_at=None, parts_total=5, parts_done=2
    )
    settings.ESTIMATION_RUN_HEARTBEAT_SECONDS = 0
    run_services._Progress(run.pk, 1, writes_percent=False)(0.9)
    run.refresh_from_db()
    assert run.progress == 40 and run.heartbeat_at is not None
    run_services._Progress(run.pk, 1)(0.9)
    run.refresh_from_db()
    assert run.progress == 90


def test_a_new_attempt_starts_with_no_parts(run_for, monkeypatch):
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = run_for()
    EstimationRun.objects.filter(pk=run.pk).update(parts_total=5, parts_done=3)
    run = run_services.execute_run(run_id=run.pk)  # small: one pass
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert (run.parts_total, run.parts_done) == (0, 0)


def test_the_run_page_status_and_api_say_how_many_parts_are_done(
    run_for, staff, client, monkeypatch
):
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = run_for()
    run_services._claim(run.pk)
    EstimationRun.objects.filter(pk=run.pk).update(parts_total=8, parts_done=3)
    client.force_login(staff)
    page = client.get(
        reverse("estimation:run-detail", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "分 8 块由计算节点并行测算，已完成 3 块。" in page
    status = client.get(
        reverse("estimation:run-status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).json()
    assert status["parts_label"] == "Measured in 8 parts on the workers: 3 done."
    api = APIClient()
    api.force_authenticate(staff)
    body = api.get(f"/api/v1/estimation-runs/{run.pk}/").json()
    assert (body["parts_total"], body["parts_done"]) == (8, 3)
    EstimationRun.objects.filter(pk=run.pk).update(parts_total=0, parts_done=0)
    page = client.get(reverse("estimation:run-detail", args=[run.pk])).content
    assert b"data-run-parts></p>" in page  # one piece: nothing to say
