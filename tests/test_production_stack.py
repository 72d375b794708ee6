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
def celery_worker_process(transactional_db):
    """A real `celery worker` on the test database and the stage's Redis."""
    database = settings.DATABASES["default"]
    database_url = (
        f"postgis://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{connection.settings_dict['NAME']}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
    }
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
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
    celery_app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager = eager
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
