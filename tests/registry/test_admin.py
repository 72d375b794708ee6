import pytest
from django.core.management import call_command
from django.urls import reverse

from registry.models import (
    Account,
    AdministrativeDivision,
    Membership,
    Organization,
    Project,
    User,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    call_command("load_bijie_demo")
    client.force_login(User.objects.get(username="registry_admin_demo"))
    return client


@pytest.mark.parametrize(
    "model", [User, Organization, Membership, Account, AdministrativeDivision, Project]
)
def test_every_registry_model_has_an_admin_list_and_change_page(admin_client, model):
    info = (model._meta.app_label, model._meta.model_name)
    assert (
        admin_client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code
        == 200
    )
    obj = model.objects.first()
    response = admin_client.get(
        reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
    )
    assert response.status_code == 200


def test_project_admin_shows_the_boundary_on_the_map_read_only(admin_client):
    project = Project.objects.filter(is_demo=True).first()
    body = admin_client.get(
        reverse("admin:registry_project_change", args=[project.pk])
    ).content.decode()
    assert "data-boundary-widget" in body
    assert "vendor/leaflet/leaflet.js" in body
    assert "readonly" in body
    assert "MultiPolygon" in body
