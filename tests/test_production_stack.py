"""Runs only in the production-stack stage of `make test` (PostgreSQL + Redis)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from registry.tasks import ping_task

pytestmark = pytest.mark.production_stack


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path):
    """A real `celery worker` on the test database and the stage's Redis."""
    database = settings.DATABASES["default"]
    database_url = (
        f"postgis://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{connection.settings_dict['NAME']}"
    )
    settings.MEDIA_ROOT = tmp_path / "media"
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # what the worker sends itself (a run's parts) stays on this queue
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "warning",
            "--hostname",
            f"{queue}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    eager = celery_app.conf.task_always_eager
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager = eager
        celery_app.conf.task_default_queue = default_queue
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_the_stage_runs_on_postgis_and_redis():
    assert connection.vendor == "postgresql"
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgis")
    assert settings.REDIS_URL.startswith("redis://")


@pytest.mark.django_db
def test_postgis_is_installed_in_the_test_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        assert cursor.fetchone()[0].startswith("3.")


def test_a_real_worker_round_trips_a_task(celery_worker_process):
    result = ping_task.apply_async(queue=celery_worker_process)
    reply = result.get(timeout=60)
    assert reply["vendor"] == "postgresql"
    assert reply["database"] == connection.settings_dict["NAME"]
    assert reply["worker"].startswith(celery_worker_process)


@pytest.mark.django_db
def test_healthz_sees_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == {"ok": True, "mode": "redis"}


def test_a_real_worker_computes_an_estimation_run(
    celery_worker_process, reference_data, tmp_path
):
    """The run is queued on commit, a worker process computes it, the page's
    status endpoint sees it finish."""
    from datetime import date

    from django.core.files.uploadedfile import SimpleUploadedFile

    from estimation.models import ClassScheme, EstimationRun, Methodology
    from estimation.services.datasets import upload_landcover_dataset
    from estimation.services.runs import create_run
    from registry.roles import Role
    from tests.estimation.conftest import PARCEL, write_landcover
    from tests.registry.factories import (
        MembershipFactory,
        OrganizationFactory,
        UserFactory,
    )
    from tests.registry.projects import make_project

    owner = OrganizationFactory()
    staff = UserFactory()
    from registry.services import grant_role

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
    run = create_run(
        actor=staff,
        project=project,
        dataset=dataset,
        methodology=Methodology.objects.get(is_default=True),
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert run.status == EstimationRun.Status.SUCCEEDED, run.error_message
    assert run.results.count() == 2
