"""With a real worker and Redis (production-stack stage): a run whose first send
failed is sent again by the outbox and computed by the worker, which also
draws its picture; the file check runs on the worker too."""

import time
from datetime import date, timedelta
from unittest import mock

import kombu.exceptions
import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from common import quantities
from estimation import tasks
from estimation.models import ClassScheme, EstimationRun, LandCoverDataset, Methodology
from estimation.services import measurement
from estimation.services import runs as run_services
from estimation.services.datasets import upload_landcover_dataset
from registry.roles import Role
from registry.services import grant_role
from tests.estimation.conftest import PARCEL, write_landcover
from tests.registry.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.registry.projects import make_project
from tests.test_production_stack import celery_worker_process  # noqa: F401 - fixture

pytestmark = pytest.mark.production_stack


def _wait_for(check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _staff_project_and_dataset(geometry, raster):
    """A bureau's staff member, a project of theirs and their uploaded map."""
    owner = OrganizationFactory()
    staff = UserFactory()
    grant_role(user=staff, role=Role.BUREAU_STAFF)
    MembershipFactory(user=staff, organization=owner)
    project = make_project(actor=staff, owner=owner, geometry=geometry)
    dataset = upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="测试",
        name_en="Test",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        uploaded=SimpleUploadedFile(raster.name, raster.read_bytes()),
    )
    return staff, project, dataset


def test_a_run_sent_while_the_broker_was_down_is_computed_once_it_is_resent(
    celery_worker_process,  # noqa: F811 - the fixture imported above
    reference_data,
    tmp_path,
):
    staff, project, dataset = _staff_project_and_dataset(
        PARCEL, write_landcover(tmp_path / "lc.tif")
    )
    # the upload's first file check, on the worker
    assert _wait_for(
        lambda: (
            LandCoverDataset.objects.get(pk=dataset.pk).file_status
            == LandCoverDataset.FileStatus.MATCHES
        )
    )
    with mock.patch.object(
        tasks.execute_run_task,
        "delay",
        side_effect=kombu.exceptions.OperationalError("Error 111 connecting"),
    ):
        run = run_services.create_run(
            actor=staff,
            project=project,
            dataset=dataset,
            methodology=Methodology.objects.get(is_default=True),
            period_start=date(2021, 1, 1),
            period_end=date(2021, 12, 31),
        )
    time.sleep(1)
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.QUEUED  # kept, not lost, not sent

    later = timezone.now() + timedelta(hours=1)
    assert run_services.redispatch_queued_runs(now=later) == 1
    assert _wait_for(
        lambda: (
            EstimationRun.objects.get(pk=run.pk).status
            in (EstimationRun.Status.SUCCEEDED, EstimationRun.Status.FAILED)
        )
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    assert run.attempts == 1
    assert run.results.count() == 2
    assert run.landcover_picture.name.endswith(".png")


@pytest.fixture
def runs_in_parts(monkeypatch, settings):
    """The worker started after this measures runs in parts of one 16-row band
    (its settings come from the environment), as this process would."""
    for name, value in (
        ("ESTIMATION_PART_PIXELS", 1),
        ("ESTIMATION_WINDOW_PIXELS", 256),
    ):
        monkeypatch.setenv(name, str(value))
        setattr(settings, name, value)


def test_a_run_in_parts_is_measured_through_a_chord_on_a_real_worker(
    runs_in_parts,
    celery_worker_process,  # noqa: F811 - the fixture imported above
    reference_data,
    tmp_path,
):
    from tests.estimation.test_run_in_parts import PENTAGON, _mottled

    staff, project, dataset = _staff_project_and_dataset(
        GEOSGeometry(PENTAGON.wkt, srid=4326),
        write_landcover(
            tmp_path / "mottled.tif", width=120, height=120, codes=_mottled((120, 120))
        ),
    )
    run = run_services.create_run(
        actor=staff,
        project=project,
        dataset=dataset,
        methodology=Methodology.objects.get(is_default=True),
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    assert _wait_for(
        lambda: (
            EstimationRun.objects.get(pk=run.pk).status
            in (EstimationRun.Status.SUCCEEDED, EstimationRun.Status.FAILED)
        )
    )
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    assert run.parts_total >= 4 and run.parts_done == run.parts_total
    # the same table as one pass in this process
    estimate, parts = run_services._estimate(
        run, {"current": measurement.dataset_classes(dataset, run.boundary, None)}
    )
    assert run.covered_area_ha == estimate.totals.area_ha
    assert run.nodata_area_ha == quantities.rounded(
        parts["nodata"], quantities.AREA_PLACES
    )
    assert run.outside_area_ha == quantities.rounded(
        parts["outside"], quantities.AREA_PLACES
    )
    assert run.total_t_co2e_period == estimate.totals.sink_t_co2e_period
    assert [
        (row.ecosystem, row.area_ha, row.sink_t_co2e_period)
        for row in run.results.order_by("rank")
    ] == [
        (row.ecosystem, row.area_ha, row.sink_t_co2e_period)
        for row in estimate.ecosystems
    ]
