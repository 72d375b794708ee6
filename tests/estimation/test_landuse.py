"""Land-use polygons with a class-code field, as the Third National Land Survey
delivers them: a GeoPackage in a CGCS2000 Gauss-Kruger zone."""

from datetime import date
from decimal import Decimal as D

import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from shapely.ops import transform

from estimation.models import ClassScheme, EstimationRun, Methodology
from estimation.services.datasets import upload_landcover_dataset
from tests.estimation.conftest import PARCEL

pytestmark = pytest.mark.django_db
GEOD = pyproj.Geod(ellps="WGS84")
TO_GK = pyproj.Transformer.from_crs(4326, 4523, always_xy=True).transform


def _geodesic_ha(geometry) -> D:
    return D(repr(abs(GEOD.geometry_area_perimeter(geometry)[0]))) / 10_000


def _write_landuse(path, pieces):
    """pieces: (DLBM code, lon/lat polygon); written in EPSG:4523."""
    pyogrio.raw.write(
        str(path),
        geometry=np.array(
            [shapely.to_wkb(transform(TO_GK, polygon)) for _, polygon in pieces],
            dtype=object,
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
