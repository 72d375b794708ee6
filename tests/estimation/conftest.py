from datetime import date

import numpy as np
import pytest
import rasterio
from django.core.files.uploadedfile import SimpleUploadedFile
from rasterio.transform import from_origin

from estimation.models import ClassScheme, Methodology
from estimation.services import runs as run_services
from estimation.services.datasets import upload_landcover_dataset
from registry.roles import Role
from tests.registry.factories import OrganizationFactory
from tests.registry.projects import DAFANG, make_project, square

# MODIS IGBP codes: 2 forest, 12 farmland, 10 grassland, 255 no data.
PIXEL_DEG = 0.001


def write_landcover(path, *, west=105.59, north=27.16, width=40, height=40, codes=None):
    """A geographic GeoTIFF around the Dafang test parcels: left half forest,
    right half farmland, a grassland strip at the bottom."""
    if codes is None:
        codes = np.full((height, width), 2, dtype=np.uint8)
        codes[:, width // 2 :] = 12
        codes[-5:, :] = 10
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=codes.shape[1],
        height=codes.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=from_origin(west, north, PIXEL_DEG, PIXEL_DEG),
        nodata=255,
        tiled=True,
        blockxsize=16,
        blockysize=16,
    ) as dst:
        dst.write(codes, 1)
    return path


@pytest.fixture
def owner():
    return OrganizationFactory(name_en="Estimating collective")


@pytest.fixture
def staff(make_user, owner):
    return make_user(role=Role.BUREAU_STAFF, organization=owner)


# A 500 m square across the raster's forest/farmland line at 105.61 E.
PARCEL = square(105.607, DAFANG[1], 500)


@pytest.fixture
def project(staff, owner):
    return make_project(actor=staff, owner=owner, geometry=PARCEL)


@pytest.fixture
def landcover_file(tmp_path):
    return write_landcover(tmp_path / "landcover.tif")


@pytest.fixture
def dataset(staff, owner, landcover_file, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="测试土地覆盖",
        name_en="Test land cover",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        uploaded=SimpleUploadedFile("landcover.tif", landcover_file.read_bytes()),
    )


@pytest.fixture
def default_methodology():
    return Methodology.objects.get(is_default=True)


@pytest.fixture
def create_run(django_capture_on_commit_callbacks):
    """run_services.create_run, with the task it queues on commit executed (eagerly)."""

    def create(**arguments):
        with django_capture_on_commit_callbacks(execute=True):
            return run_services.create_run(**arguments)

    return create


@pytest.fixture
def run_for(staff, project, dataset, default_methodology, create_run):
    def make(**overrides):
        arguments = {
            "actor": staff,
            "project": project,
            "dataset": dataset,
            "methodology": default_methodology,
            "period_start": date(2021, 1, 1),
            "period_end": date(2025, 12, 31),
            "price_cny_per_t_co2e": None,
        }
        arguments.update(overrides)
        return create_run(**arguments)

    return make


# Verification and issuance ---------------------------------------------------------


@pytest.fixture
def registry_operator(operator):
    return operator


@pytest.fixture
def registry_admin(admin):
    return admin


@pytest.fixture
def verification_body(db):
    from registry.models import Organization

    return OrganizationFactory(
        name_en="Independent verifier", kind=Organization.Kind.VERIFIER
    )


@pytest.fixture
def verifier(make_user, verification_body):
    return make_user(role=Role.VERIFIER, organization=verification_body)


@pytest.fixture
def registered_project(project, staff, owner, registry_admin):
    """The estimation ``project``, registered, its owner with a holding account."""
    from registry import services as registry_services

    registry_services.open_account(organization=owner, kind="holding")
    registry_services.submit_project(actor=staff, project=project)
    registry_services.approve_project(actor=registry_admin, project=project)
    project.refresh_from_db()
    return project


@pytest.fixture
def verified_run(registered_project, run_for):
    """A finished run of the registered project over 2021-2025."""
    run = run_for()
    run.refresh_from_db()
    assert run.status == "succeeded"
    return run
