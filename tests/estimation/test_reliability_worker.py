"""With a real worker and Redis (production-stack stage): a run whose first send
failed is sent again by the outbox and computed by the worker, which also
draws its picture; the file check runs on the worker too."""

import time
from datetime import date, timedelta
from unittest import mock

import kombu.exceptions
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from estimation import tasks
from estimation.models import ClassScheme, EstimationRun, LandCoverDataset, Methodology
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


def test_a_run_sent_while_the_broker_was_down_is_computed_once_it_is_resent(
    celery_worker_process,  # noqa: F811 - the fixture imported above
    reference_data,
    tmp_path,
):
    owner = OrganizationFactory()
    staff = UserFactory()
    grant_role(user=staff, role=Role.BUREAU_STAFF)
    MembershipFactory(user=staff, organization=owner)
    project = make_project(actor=staff, owner=owner, geometry=PARCEL)
    raster = write_landcover(tmp_path / "lc.tif")
    dataset = upload_landcover_dataset(
        actor=staff,
        organization=owner,
        name_zh="测试",
        name_en="Test",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        uploaded=SimpleUploadedFile("lc.tif", raster.read_bytes()),
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
