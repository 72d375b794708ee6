from datetime import date
from decimal import Decimal as D

import pyproj
import pytest
import shapely
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from estimation import area
from estimation.calculations import CO2_PER_C
from estimation.models import (
    ClassScheme,
    Coefficient,
    EstimationRun,
    LandCoverDataset,
    Methodology,
)
from estimation.services.datasets import upload_landcover_dataset
from estimation.services.runs import new_methodology_version
from estimation.tasks import execute_run_task
from registry.roles import Role
from tests.estimation.conftest import write_landcover
from tests.registry.projects import square

pytestmark = pytest.mark.django_db
GEOD = pyproj.Geod(ellps="WGS84")


def test_upload_records_the_file_and_its_properties(dataset):
    assert dataset.kind == LandCoverDataset.Kind.RASTER
    assert len(dataset.sha256) == 64
    assert dataset.description["width"] == 40
    assert "4326" in dataset.crs


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("landcover.tif", b"", "empty_file"),
        ("landcover.tif", b"GIF89a not a tiff", "unsupported_format"),
        ("landcover.png", b"\x89PNG\r\n", "unsupported_format"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_saved(
    staff, owner, name, content, code
):
    with pytest.raises(ValidationError) as raised:
        upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="坏",
            name_en="Bad",
            product="custom",
            year=2020,
            scheme=ClassScheme.objects.get(slug="clcd"),
            uploaded=SimpleUploadedFile(name, content),
        )
    assert raised.value.code == code
    assert not LandCoverDataset.objects.exists()


def test_a_raster_without_a_crs_is_refused(staff, owner, tmp_path):
    import numpy as np
    import rasterio

    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.ones((4, 4), dtype="uint8"), 1)
    with pytest.raises(ValidationError) as raised:
        upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="无坐标",
            name_en="No CRS",
            product="custom",
            year=2020,
            scheme=ClassScheme.objects.get(slug="clcd"),
            uploaded=SimpleUploadedFile("nocrs.tif", path.read_bytes()),
        )
    assert raised.value.code == "no_crs"
    assert "coordinate system" in raised.value.messages[0]


def test_only_staff_of_the_organization_upload(make_user, owner, landcover_file):
    outsider = make_user(role=Role.BUREAU_STAFF)
    with pytest.raises(PermissionDenied):
        upload_landcover_dataset(
            actor=outsider,
            organization=owner,
            name_zh="x",
            name_en="x",
            product="custom",
            year=2020,
            scheme=ClassScheme.objects.get(slug="modis-igbp"),
            uploaded=SimpleUploadedFile("l.tif", landcover_file.read_bytes()),
        )


def _geodesic_ha(geometry):
    shape = shapely.from_wkb(bytes(geometry.wkb))
    return D(repr(abs(GEOD.geometry_area_perimeter(shape)[0]))) / 10_000


def test_a_run_measures_each_ecosystem_and_applies_the_coefficients(run_for, project):
    run = run_for(price_cny_per_t_co2e=D("95.70"))
    run.refresh_from_db()  # eager task ran on commit
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    assert run.progress == 100
    rows = {row.ecosystem: row for row in run.results.all()}
    assert set(rows) == {"forest", "farmland"}
    boundary_ha = _geodesic_ha(project.boundary)
    assert run.boundary_area_ha == pytest.approx(boundary_ha, rel=D("1e-6"))
    covered = rows["forest"].area_ha + rows["farmland"].area_ha
    assert covered == pytest.approx(boundary_ha, rel=D("1e-6"))
    assert rows["forest"].rank == 1
    expected = rows["forest"].area_ha * D("0.581") * CO2_PER_C
    assert rows["forest"].sink_t_co2e_per_year == pytest.approx(
        expected, abs=D("0.002")
    )
    assert run.years == D(5)
    assert run.total_t_co2e_period == pytest.approx(
        run.total_t_co2e_per_year * 5, abs=D("0.01")
    )
    assert run.total_value_cny_per_year == pytest.approx(
        run.total_t_co2e_per_year * D("95.70"), abs=D("0.1")
    )
    assert run.nodata_area_ha == 0
    assert run.outside_area_ha == 0


def test_rerunning_gives_identical_numbers_and_fingerprint(run_for):
    first, second = run_for(), run_for()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.fingerprint == second.fingerprint
    rows = lambda run: list(  # noqa: E731
        run.results.values_list("ecosystem", "area_ha", "sink_t_co2e_per_year")
    )
    assert rows(first) == rows(second)
    third = run_for(price_cny_per_t_co2e=D(60))
    assert third.fingerprint != first.fingerprint


def test_using_a_methodology_freezes_it_and_a_change_makes_a_new_version(
    run_for, default_methodology, make_user
):
    assert default_methodology.frozen_at is None
    run_for()
    default_methodology.refresh_from_db()
    assert default_methodology.is_frozen
    admin = make_user(role=Role.REGISTRY_ADMIN)
    revised = new_methodology_version(actor=admin, methodology=default_methodology)
    assert (revised.slug, revised.version, revised.is_frozen) == (
        default_methodology.slug,
        2,
        False,
    )
    assert revised.coefficients.count() == default_methodology.coefficients.count()
    assert not revised.is_default


def test_a_boundary_partly_outside_the_map_reports_the_outside_area(
    staff, owner, dataset, default_methodology, create_run
):
    # The raster spans 105.59..105.63 E; this square starts 200 m west of it.
    lon, lat = 105.59 - 0.002, 27.13
    run = create_run(
        actor=staff,
        organization=owner,
        boundary=square(lon, lat, 1000),
        dataset=dataset,
        methodology=default_methodology,
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert run.outside_area_ha > 15
    total = run.covered_area_ha + run.nodata_area_ha + run.outside_area_ha
    assert total == pytest.approx(run.boundary_area_ha, rel=D("1e-6"))


def test_unknown_codes_are_reported_with_their_area(
    staff, owner, tmp_path, default_methodology, project, settings, create_run
):
    import numpy as np

    settings.MEDIA_ROOT = tmp_path / "media"
    codes = np.full((40, 40), 2, dtype=np.uint8)
    codes[:, 20:] = 77  # not an IGBP class
    path = write_landcover(tmp_path / "odd.tif", codes=codes)
    odd = upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="奇",
        name_en="Odd",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        uploaded=SimpleUploadedFile("odd.tif", path.read_bytes()),
    )
    run = create_run(
        actor=staff,
        project=project,
        dataset=odd,
        methodology=default_methodology,
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    run.refresh_from_db()
    assert set(run.unmapped_codes) == {"77"}
    assert D(run.unmapped_codes["77"]) > 0


def test_a_boundary_outside_the_map_fails_with_a_translated_reason(
    staff, owner, dataset, default_methodology, create_run
):
    run = create_run(
        actor=staff,
        organization=owner,
        boundary=square(106.5, 27.5, 500),
        dataset=dataset,
        methodology=default_methodology,
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.FAILED
    assert run.error_code == "no_overlap"
    assert "outside the land-cover map" in run.error_message
    assert not run.results.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price_cny_per_t_co2e": D(-1)}, "price_cny_per_t_co2e"),
        ({"period_end": date(2020, 1, 1)}, "period_end"),
    ],
)
def test_bad_run_inputs_are_refused_and_nothing_is_saved(run_for, overrides, field):
    with pytest.raises(ValidationError) as raised:
        run_for(**overrides)
    assert field in raised.value.message_dict
    assert not EstimationRun.objects.exists()


def test_others_cannot_run_estimates_on_a_project(make_user, run_for):
    with pytest.raises(PermissionDenied):
        run_for(actor=make_user(role=Role.BUREAU_STAFF))
    assert not EstimationRun.objects.exists()


def test_the_task_computes_once_and_is_safe_to_repeat(run_for):
    run = run_for()
    run.refresh_from_db()
    finished_at = run.finished_at
    assert execute_run_task.apply(args=[run.pk]).get() == "succeeded"
    run.refresh_from_db()
    assert run.finished_at == finished_at
    assert run.results.count() == 2


def test_stock_difference_between_two_maps(
    staff, owner, project, tmp_path, settings, create_run
):
    """Forest turned to farmland on half the parcel: InVEST's storage change."""
    import numpy as np

    settings.MEDIA_ROOT = tmp_path / "media"
    scheme = ClassScheme.objects.get(slug="modis-igbp")
    before = np.full((40, 40), 2, dtype=np.uint8)
    after = before.copy()
    after[:, 20:] = 12

    def upload(name, codes, year):
        path = write_landcover(tmp_path / name, codes=codes)
        return upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh=name,
            name_en=name,
            product="modis-igbp",
            year=year,
            scheme=scheme,
            uploaded=SimpleUploadedFile(name, path.read_bytes()),
        )

    methodology = Methodology.objects.create(
        slug="invest-test",
        name_zh="InVEST",
        name_en="InVEST pools",
        kind=Methodology.Kind.STOCK_DIFFERENCE,
        citation="natcap/invest tests/test_carbon.py pools",
    )
    for ecosystem, pools in {
        "forest": (15, 10, 60, 1),
        "farmland": (5, 3, 20, 0),
    }.items():
        for pool, value in zip(("above", "below", "soil", "dead"), pools, strict=True):
            Coefficient.objects.create(
                methodology=methodology,
                ecosystem=ecosystem,
                pool=pool,
                value=value,
                unit="t_c",
                basis="stock_per_ha",
                citation="InVEST test",
                status="verified",
            )
    run = create_run(
        actor=staff,
        project=project,
        baseline_dataset=upload("before.tif", before, 2016),
        dataset=upload("after.tif", after, 2030),
        methodology=methodology,
        period_start=date(2016, 1, 1),
        period_end=date(2029, 12, 31),
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    rows = {row.ecosystem: row for row in run.results.all()}
    farmland_ha = rows["farmland"].area_ha
    # Each converted hectare loses 86 - 28 = 58 t C over the 14 years (the shown
    # area is rounded to 0.0001 ha: 0.0001 x 58 x 44/12 = 0.02 t).
    expected_change_t_co2e = -D(58) * farmland_ha * CO2_PER_C
    assert run.total_t_co2e_period == pytest.approx(
        expected_change_t_co2e, abs=D("0.03")
    )
    assert run.years == D(14)


def test_a_stock_method_without_a_baseline_is_refused(run_for):
    methodology = Methodology.objects.create(
        slug="stock", name_zh="s", name_en="s", kind="stock_difference", citation="x"
    )
    with pytest.raises(ValidationError) as raised:
        run_for(methodology=methodology)
    assert "baseline_dataset" in raised.value.message_dict


def test_progress_is_stored_while_the_run_computes(run_for, monkeypatch):
    seen = []
    real = area.class_areas

    def class_areas_watching_progress(path, boundary, *, progress=None, **options):
        def report(fraction):
            progress(fraction)
            seen.append(EstimationRun.objects.values_list("progress", flat=True).get())

        for step in (0.1, 0.3, 0.6, 0.9):
            report(step)
        return real(path, boundary, **options)

    monkeypatch.setattr(area, "class_areas", class_areas_watching_progress)
    run = run_for()
    run.refresh_from_db()
    assert seen == [10, 30, 60, 90]
    assert (run.status, run.progress) == ("succeeded", 100)
