import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from registry import services
from registry.models import Project, ProjectDocument
from registry.roles import Role
from tests.registry.factories import OrganizationFactory
from tests.registry.projects import DAFANG, make_project, square

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def owner():
    return OrganizationFactory(name_en="Owner collective", name_zh="业主村")


@pytest.fixture
def staff(make_user, owner):
    return make_user(role=Role.BUREAU_STAFF, organization=owner)


@pytest.fixture
def admin(make_user):
    return make_user(role=Role.REGISTRY_ADMIN)


def _geojson_file(geometry, name="boundary.geojson"):
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": json.loads(geometry.json)}
        ],
    }
    return SimpleUploadedFile(name, json.dumps(collection).encode())


def _form_data(owner, **extra):
    return {
        "name_zh": "龙场森林碳汇",
        "name_en": "Longchang forest sink",
        "owner": owner.pk,
        "county": _county_pk("520521"),
        "ecosystem_focus": "forest",
        "crediting_start": "2022-01-01",
        "crediting_end": "2051-12-31",
        "description": "",
        **extra,
    }


def _county_pk(adcode):
    from registry.models import AdministrativeDivision

    return AdministrativeDivision.objects.get(adcode=adcode).pk


def test_the_public_list_shows_submitted_projects_and_filters(client, staff, owner):
    submitted = make_project(actor=staff, owner=owner, name_en="Visible one")
    services.submit_project(actor=staff, project=submitted)
    make_project(
        actor=staff,
        owner=owner,
        name_en="Hidden draft",
        geometry=square(105.62, 27.2, 300),
    )
    body = client.get("/projects/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Visible one" in body
    assert "Hidden draft" not in body
    assert "1 project" in body

    filtered = client.get("/projects/?county=520581", HTTP_ACCEPT_LANGUAGE="en")
    assert "Visible one" not in filtered.content.decode()
    assert "Visible one" in client.get("/projects/?text=Visible").content.decode()
    # Unknown filter values and page numbers are ignored, not errors.
    assert client.get("/projects/?status=nope&page=99999").status_code == 200


def test_the_map_data_is_geojson_of_the_visible_projects(client, staff, owner):
    project = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=project)
    data = client.get("/projects/map.geojson").json()
    assert [feature["properties"]["code"] for feature in data["features"]] == [
        project.code
    ]
    counties = client.get("/projects/counties.geojson").json()
    assert len(counties["features"]) == 8


def test_a_draft_page_is_404_for_outsiders_and_shown_to_its_owner(
    client, make_user, staff, owner
):
    project = make_project(actor=staff, owner=owner)
    url = reverse("registry:project-detail", args=[project.code])
    assert client.get(url).status_code == 404
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    assert client.get(url).status_code == 404
    client.force_login(staff)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "Submit for registration" in response.content.decode()


def test_registering_a_project_by_uploading_geojson(client, staff, owner):
    client.force_login(staff)
    upload = _geojson_file(square(*DAFANG, 1000))
    response = client.post(
        reverse("registry:project-create"),
        {
            **_form_data(owner),
            "boundary_file": upload,
            "design_document": SimpleUploadedFile("pdd.pdf", PDF),
        },
    )
    project = Project.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("registry:project-detail", args=[project.code])
    assert project.area_ha == pytest.approx(100, rel=1e-3)
    assert project.boundary_source_srid == 4326
    document = project.documents.get()
    assert document.kind == ProjectDocument.Kind.DESIGN_DOCUMENT
    assert (
        client.get(
            reverse("registry:document-download", args=[document.pk])
        ).status_code
        == 200
    )


def test_preview_shows_the_area_and_keeps_the_boundary_without_saving(
    client, staff, owner
):
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-create"),
        {
            **_form_data(owner),
            "boundary_file": _geojson_file(square(*DAFANG, 1000)),
            "preview": "1",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview: 100" in body
    assert "MultiPolygon" in body  # the parsed boundary is in the map field
    assert not Project.objects.exists()


def test_a_drawn_boundary_is_accepted(client, staff, owner):
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-create"),
        {**_form_data(owner), "boundary_geojson": square(*DAFANG, 500).json},
    )
    assert response.status_code == 302
    assert Project.objects.get().area_ha == pytest.approx(25, rel=1e-3)


def test_a_bad_boundary_gets_a_translated_error_and_saves_nothing(client, staff, owner):
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-create"),
        {
            **_form_data(owner),
            "boundary_file": SimpleUploadedFile("b.geojson", b"{not json"),
        },
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    assert not Project.objects.exists()


def test_missing_boundary_is_refused(client, staff, owner):
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-create"), _form_data(owner), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "Upload a boundary file or draw the boundary" in response.content.decode()


def test_a_fake_pdf_is_refused_and_nothing_is_saved(client, staff, owner):
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-create"),
        {
            **_form_data(owner),
            "boundary_geojson": square(*DAFANG, 500).json,
            "design_document": SimpleUploadedFile("pdd.pdf", b"MZ\x90\x00 not a pdf"),
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "not a real PDF file" in response.content.decode()
    assert not Project.objects.exists()
    assert not ProjectDocument.objects.exists()


def test_non_staff_cannot_open_the_form(client, make_user):
    client.force_login(make_user(role=Role.BUYER))
    assert client.get(reverse("registry:project-create")).status_code == 403


def test_owner_cannot_be_an_organization_the_user_does_not_act_for(
    client, staff, owner
):
    client.force_login(staff)
    stranger = OrganizationFactory()
    response = client.post(
        reverse("registry:project-create"),
        {
            **_form_data(owner),
            "owner": stranger.pk,
            "boundary_geojson": square(*DAFANG, 500).json,
        },
    )
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_submit_and_approve_through_the_pages(client, staff, owner, admin):
    project = make_project(actor=staff, owner=owner)
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-action", args=[project.code, "submit"])
    )
    assert response.status_code == 302
    client.force_login(admin)
    client.post(reverse("registry:project-action", args=[project.code, "approve"]))
    project.refresh_from_db()
    assert project.status == Project.Status.REGISTERED
    body = client.get(
        reverse("registry:project-detail", args=[project.code]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "Submitted → Registered" in body


def test_an_overlapping_submission_shows_the_other_project_and_the_overlap(
    client, staff, owner, admin
):
    first = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=first)
    second = make_project(actor=staff, owner=owner, name_en="Second")
    client.force_login(staff)
    response = client.post(
        reverse("registry:project-action", args=[second.code, "submit"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert first.code in body
    assert "Overlapping projects" in body
    assert '"overlaps": [{"type": "Feature"' in body
    second.refresh_from_db()
    assert second.status == Project.Status.DRAFT


def test_other_organizations_staff_cannot_act_on_a_project(
    client, make_user, staff, owner
):
    project = make_project(actor=staff, owner=owner)
    services.submit_project(actor=staff, project=project)
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    for action in ("approve", "return", "submit"):
        response = client.post(
            reverse("registry:project-action", args=[project.code, action])
        )
        assert response.status_code == 403, action
    project.refresh_from_db()
    assert project.status == Project.Status.SUBMITTED


def test_land_tenure_documents_are_not_public(client, staff, owner, admin, make_user):
    project = make_project(actor=staff, owner=owner)
    document = services.add_project_document(
        actor=staff,
        project=project,
        kind="land_tenure",
        uploaded=SimpleUploadedFile("tenure.pdf", PDF),
    )
    services.submit_project(actor=staff, project=project)
    url = reverse("registry:document-download", args=[document.pk])
    assert client.get(url).status_code == 404
    client.force_login(make_user(role=Role.BUYER))
    assert client.get(url).status_code == 404
    client.force_login(admin)
    assert client.get(url).status_code == 200


def test_list_page_queries_do_not_grow_with_the_number_of_projects(
    client, staff, owner
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def counts():
        client.force_login(staff)
        with CaptureQueriesContext(connection) as page:
            client.get("/projects/")
        with CaptureQueriesContext(connection) as data:
            client.get("/projects/map.geojson")
        return len(page.captured_queries), len(data.captured_queries)

    for n in range(2):
        make_project(
            actor=staff, owner=owner, geometry=square(105.55 + n * 0.01, 27.1, 300)
        )
    few = counts()
    for n in range(2, 6):
        make_project(
            actor=staff, owner=owner, geometry=square(105.55 + n * 0.01, 27.1, 300)
        )
    assert counts() == few
