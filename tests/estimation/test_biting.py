"""Tests that bite: each fails on a specific, plausible mistake that the rest of
the suite let through (issue 14): a run's covered area leaving out the area of
class codes the scheme does not know, and a scheme's no-data codes counted as
land cover. Every square metre of the boundary is covered, no data or outside
the map, exactly once."""

from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
import rasterio
from django.core.files.uploadedfile import SimpleUploadedFile
from rasterio.transform import from_origin

from estimation.models import ClassScheme, EstimationRun
from estimation.services.datasets import upload_landcover_dataset
from tests.estimation.conftest import PIXEL_DEG

pytestmark = pytest.mark.django_db


def _raster(path, codes, *, nodata):
    """A geographic GeoTIFF over the Dafang test parcel (as in the conftest),
    with the given codes and no-data tag (None: every pixel is a class)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=codes.shape[1],
        height=codes.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=from_origin(105.59, 27.16, PIXEL_DEG, PIXEL_DEG),
        nodata=nodata,
    ) as dst:
        dst.write(codes, 1)
    return path


def _run_on(codes, *, nodata, staff, owner, project, methodology, create_run, tmp):
    path = _raster(tmp / "codes.tif", codes, nodata=nodata)
    dataset = upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="测试",
        name_en="Test",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        uploaded=SimpleUploadedFile("codes.tif", path.read_bytes()),
    )
    run = create_run(
        actor=staff,
        project=project,
        dataset=dataset,
        methodology=methodology,
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    return run


def _split_codes(left: int, right: int) -> np.ndarray:
    """Left half ``left``, right half ``right``: the test parcel straddles the
    line at 105.61 E, so both are inside it."""
    codes = np.full((40, 40), left, dtype=np.uint8)
    codes[:, 20:] = right
    return codes


def test_covered_area_includes_the_area_of_unknown_codes(
    staff, owner, project, default_methodology, create_run, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    run = _run_on(
        _split_codes(2, 77),  # forest | a code MODIS IGBP does not have
        nodata=255,
        staff=staff,
        owner=owner,
        project=project,
        methodology=default_methodology,
        create_run=create_run,
        tmp=tmp_path,
    )
    forest = run.results.get(ecosystem="forest").area_ha
    unknown = D(run.unmapped_codes["77"])
    assert set(run.unmapped_codes) == {"77"}
    assert forest > 5 and unknown > 5  # both halves are really there
    assert run.covered_area_ha == forest + unknown
    assert run.nodata_area_ha == 0
    assert run.outside_area_ha == 0
    assert run.covered_area_ha == pytest.approx(run.boundary_area_ha, abs=D("0.001"))


def test_the_schemes_no_data_codes_are_no_data_not_land_cover(
    staff, owner, project, default_methodology, create_run, tmp_path, settings
):
    """MODIS IGBP's scheme says 255 is no data; the file itself has no no-data
    tag, so only the scheme can tell."""
    settings.MEDIA_ROOT = tmp_path / "media"
    assert ClassScheme.objects.get(slug="modis-igbp").nodata_codes == ["255"]
    run = _run_on(
        _split_codes(2, 255),
        nodata=None,
        staff=staff,
        owner=owner,
        project=project,
        methodology=default_methodology,
        create_run=create_run,
        tmp=tmp_path,
    )
    forest = run.results.get(ecosystem="forest").area_ha
    assert list(run.results.values_list("ecosystem", flat=True)) == ["forest"]
    assert run.unmapped_codes == {}
    assert run.covered_area_ha == forest
    assert run.nodata_area_ha > 5
    assert run.outside_area_ha == 0
    total = run.covered_area_ha + run.nodata_area_ha + run.outside_area_ha
    assert total == pytest.approx(run.boundary_area_ha, abs=D("0.001"))
