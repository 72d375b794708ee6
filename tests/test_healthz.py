from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["database"]["ok"] is True
    assert data["broker"]["ok"] is True


@override_settings(
    CELERY_TASK_ALWAYS_EAGER=False,
    REDIS_URL="redis://127.0.0.1:1/0",
    CELERY_BROKER_URL="redis://127.0.0.1:1/0",
)
def test_healthz_is_503_when_the_broker_is_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "unavailable"
    assert data["broker"]["ok"] is False
    assert data["database"]["ok"] is True


def test_healthz_is_503_when_the_database_is_down(client):
    with mock.patch(
        "config.views.connection.cursor", side_effect=DatabaseError("gone")
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == {
        "ok": False,
        "vendor": mock.ANY,
        "error": "gone",
    }


# The worker's and beat's heartbeats -------------------------------------------------


@pytest.fixture
def with_workers(settings):
    """Tasks go to a worker (not eager); the broker itself answers."""
    from django.core.cache import cache

    settings.CELERY_TASK_ALWAYS_EAGER = False
    cache.clear()
    with mock.patch(
        "config.views._broker_status", return_value={"ok": True, "mode": "redis"}
    ):
        yield
    cache.clear()


def _beat(component, seconds_ago):
    from datetime import timedelta

    from django.utils import timezone

    from registry.services import record_heartbeat

    at = timezone.now() - timedelta(seconds=seconds_ago)
    record_heartbeat(component=component, hostname="h", now=at)
    return at


def test_healthz_in_eager_mode_has_no_worker_or_beat_to_hear_from(client):
    data = client.get("/healthz").json()
    for component in ("worker", "beat"):
        assert data[component] == {"ok": True, "mode": "eager", "last_heartbeat": None}


def test_healthz_reports_fresh_heartbeats(client, with_workers):
    worker_at = _beat("worker", 5)
    beat_at = _beat("beat", 179)
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["worker"] == {
        "ok": True,
        "mode": "celery",
        "last_heartbeat": worker_at.isoformat(),
    }
    assert data["beat"] == {
        "ok": True,
        "mode": "celery",
        "last_heartbeat": beat_at.isoformat(),
    }


def test_healthz_reports_a_stale_worker_as_degraded_not_503(client, with_workers):
    """The web process answers; a restart of it would not bring a worker back."""
    from registry.models import Alert

    stale_at = _beat("worker", 181)
    _beat("beat", 1)
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "degraded"
    assert data["worker"] == {
        "ok": False,
        "mode": "celery",
        "last_heartbeat": stale_at.isoformat(),
    }
    assert data["beat"]["ok"] is True
    # The probe polling /healthz is enough for someone to be told.
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.WORKER_SILENT
    assert alert.params == {"since": stale_at.isoformat()}


def test_healthz_reports_missing_heartbeats(client, with_workers):
    _beat("worker", 1)
    data = client.get("/healthz").json()
    assert data["status"] == "degraded"
    assert data["beat"] == {"ok": False, "mode": "celery", "last_heartbeat": None}
    assert data["worker"]["ok"] is True


def test_healthz_stays_503_for_the_broker_whatever_the_heartbeats(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    _beat("worker", 1)
    _beat("beat", 1)
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "unavailable"
    assert data["worker"]["ok"] is True


def test_healthz_without_a_database_reports_heartbeats_unknown(client, with_workers):
    with mock.patch(
        "config.views.connection.cursor", side_effect=DatabaseError("gone")
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    for component in ("worker", "beat"):
        assert response.json()[component] == {
            "ok": False,
            "mode": "celery",
            "last_heartbeat": None,
        }
