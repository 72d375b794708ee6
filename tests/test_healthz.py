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
