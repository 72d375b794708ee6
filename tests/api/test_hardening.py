"""No input gives a 5xx, and every API error is JSON with a code (issue 13):
deep nesting, oversized bodies, boundary files as multipart, self-approval
and cancellations from accounts that cannot give credits."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from shapely.geometry import shape

from registry.models import Account, Project
from tests.api.journey import API, ok
from tests.estimation.conftest import PARCEL
from tests.registry.projects import square
from tests.registry.test_boundaries import shapefile_entries, zip_entries
from trading.models import LedgerEntry, TradeRequest

pytestmark = pytest.mark.django_db

DATA_LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE default, 2.5 MB


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    return body


def project_fields(owner, **extra) -> dict:
    return {
        "name_zh": "边界文件项目",
        "name_en": "Boundary file project",
        "owner": owner.pk,
        "county": "520521",
        "crediting_start": "2021-01-01",
        "crediting_end": "2050-12-31",
        "ecosystem_focus": "forest",
        **extra,
    }


def geojson_file(padding: int = 0, name: str = "parcel.geojson") -> SimpleUploadedFile:
    """The test parcel as a GeoJSON file, padded with insignificant whitespace
    to ``padding`` extra bytes."""
    feature = {"type": "Feature", "properties": {}, "geometry": json.loads(PARCEL.json)}
    text = json.dumps(feature) + " " * padding
    return SimpleUploadedFile(name, text.encode(), content_type="application/geo+json")


# Deep nesting -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5000, 100])
@pytest.mark.parametrize("path", ["projects/", "trade-requests/", "estimation-runs/"])
def test_deeply_nested_json_is_a_400_json_error(api, staff, path, depth):
    response = api(staff).post(
        f"{API}/{path}", nested(depth), content_type="application/json"
    )
    body = assert_json_error(response, 400, "nesting_too_deep")
    assert "64" in body["message"]


def test_deep_nesting_is_refused_in_chinese_too(api, staff):
    response = api(staff, language="zh-hans").post(
        f"{API}/projects/", nested(5000), content_type="application/json"
    )
    assert_json_error(response, 400, "nesting_too_deep")
    assert "64" in response.json()["message"]
    assert "JSON" in response.json()["message"]


def test_ordinary_nesting_still_parses(api, staff, owner_org, reference_data):
    body = project_fields(owner_org, boundary=json.loads(PARCEL.json))
    ok(api(staff).post(f"{API}/projects/", body, format="json"), 201)


# Oversized bodies ---------------------------------------------------------------------


def test_an_oversized_json_body_is_a_413_json_error(api, staff, owner_org):
    body = json.dumps(project_fields(owner_org, description="x" * (DATA_LIMIT + 1)))
    response = api(staff).post(
        f"{API}/projects/", body, content_type="application/json"
    )
    body = assert_json_error(response, 413, "request_too_large")
    assert "multipart" in body["message"]
    assert not Project.objects.exists()


def test_an_oversized_form_field_is_a_413_json_error(api, staff, owner_org):
    fields = project_fields(owner_org, description="x" * (DATA_LIMIT + 1))
    response = api(staff).post(f"{API}/projects/", fields, format="multipart")
    assert_json_error(response, 413, "request_too_large")
    assert not Project.objects.exists()


# Boundary files -------------------------------------------------------------------


def test_a_boundary_file_larger_than_a_json_body_may_be_is_accepted(
    api, staff, owner_org, reference_data
):
    upload = geojson_file(padding=DATA_LIMIT + 100_000)
    response = api(staff).post(
        f"{API}/projects/",
        project_fields(owner_org, boundary_file=upload),
        format="multipart",
    )
    created = ok(response, 201)
    project = Project.objects.get(code=created["id"])
    assert abs(project.area_ha - 25) < 0.1  # the 500 m square
    assert created["properties"]["boundary_source_srid"] == 4326


def test_a_zipped_shapefile_in_cgcs2000_is_read_like_the_web_form(
    api, staff, owner_org, reference_data, tmp_path
):
    parcel = shape(json.loads(PARCEL.json))
    archive = zip_entries(shapefile_entries(tmp_path, parcel, "EPSG:4490"))
    response = api(staff).post(
        f"{API}/projects/",
        project_fields(
            owner_org, boundary_file=SimpleUploadedFile("parcel.zip", archive)
        ),
        format="multipart",
    )
    created = ok(response, 201)
    assert created["properties"]["boundary_source_srid"] == 4490


def test_a_bad_boundary_file_is_refused_with_its_code_and_nothing_is_saved(
    api, staff, owner_org, reference_data
):
    response = api(staff, language="zh-hans").post(
        f"{API}/projects/",
        project_fields(
            owner_org, boundary_file=SimpleUploadedFile("parcel.txt", b"hello")
        ),
        format="multipart",
    )
    body = assert_json_error(response, 400, "unsupported_format")
    assert body["fields"]["boundary_file"][0]["code"] == "unsupported_format"
    assert not Project.objects.exists()


def test_a_boundary_file_over_the_web_forms_limit_is_refused(
    api, staff, owner_org, reference_data, settings
):
    settings.REGISTRY_BOUNDARY_MAX_BYTES = 100_000  # 20 MB in production
    response = api(staff).post(
        f"{API}/projects/",
        project_fields(owner_org, boundary_file=geojson_file(padding=100_001)),
        format="multipart",
    )
    assert_json_error(response, 400, "file_too_large")
    assert not Project.objects.exists()


def test_a_project_needs_a_boundary_of_one_kind(api, staff, owner_org, reference_data):
    response = api(staff).post(
        f"{API}/projects/", project_fields(owner_org), format="multipart"
    )
    body = assert_json_error(response, 400, "required")
    assert "boundary" in body["fields"]
    assert not Project.objects.exists()


def test_a_draft_boundary_is_replaced_by_a_file(api, staff, owner_org, reference_data):
    client = api(staff)
    body = project_fields(owner_org, boundary=json.loads(PARCEL.json))
    code = ok(client.post(f"{API}/projects/", body, format="json"), 201)["id"]
    bigger = square(105.607, 27.14, 600)
    upload = SimpleUploadedFile(
        "bigger.geojson", bigger.json.encode(), content_type="application/geo+json"
    )
    ok(
        client.patch(
            f"{API}/projects/{code}/", {"boundary_file": upload}, format="multipart"
        )
    )
    assert abs(Project.objects.get(code=code).area_ha - 36) < 0.1


def test_the_schema_offers_the_boundary_as_a_multipart_file(client, db):
    schema = client.get(f"{API}/schema/", HTTP_ACCEPT="application/json").json()
    content = schema["paths"]["/api/v1/projects/"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    reference = content["multipart/form-data"]["schema"]["$ref"]
    component = schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    assert component["properties"]["boundary_file"]["format"] == "binary"


# Self-approval ------------------------------------------------------------------------


def test_the_schema_documents_self_review_as_403_own_request(client, db):
    schema = client.get(f"{API}/schema/", HTTP_ACCEPT="application/json").json()
    for step in ("approve", "reject"):
        operation = schema["paths"][f"/api/v1/trade-requests/{{id}}/{step}/"]["post"]
        assert "own_request" in operation["responses"]["403"]["description"]
        assert "413" in operation["responses"]


def test_an_initiator_cannot_reject_their_own_request_either(journey, api, admin):
    created = ok(
        api(admin).post(
            f"{API}/trade-requests/",
            {
                "kind": "cancellation",
                "from_account": journey.seller_account_number,
                "quantity": 1,
                "note": "Reversal after a fire.",
            },
        ),
        201,
    )
    own = api(admin).post(
        f"{API}/trade-requests/{created['id']}/reject/", {"reason": "Changed my mind"}
    )
    assert_json_error(own, 403, "own_request")
    assert TradeRequest.objects.get(pk=created["id"]).status == "pending"


# Cancellations --------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Account.Kind.CANCELLATION, Account.Kind.RETIREMENT])
def test_a_cancellation_from_a_final_account_is_a_400_json_error(
    api, admin, operator, kind
):
    account = operator.accounts.get(kind=kind)
    response = api(admin, language="zh-hans").post(
        f"{API}/trade-requests/",
        {
            "kind": "cancellation",
            "from_account": account.number,
            "quantity": 1,
            "note": "Reversal after a fire.",
        },
        format="json",
    )
    body = assert_json_error(response, 400, "account_kind")
    assert body["fields"]["from_account"][0]["code"] == "account_kind"
    assert not TradeRequest.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_nul_character_in_a_named_choice_is_a_400_not_a_server_error(
    api, staff, owner_org, reference_data
):
    # Found by schemathesis on PostgreSQL, which cannot compare text with NUL.
    from estimation.models import LandCoverDataset

    response = api(staff).post(
        f"{API}/landcover-datasets/",
        {
            "organization": owner_org.pk,
            "name_zh": "土地覆盖",
            "name_en": "Land cover",
            "product": "modis-igbp",
            "year": 2020,
            "scheme": "\x00igbp",
            "file": SimpleUploadedFile("file.zip", b"PK\x03\x04"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "scheme" in response.json()["fields"]
    assert not LandCoverDataset.objects.exists()
