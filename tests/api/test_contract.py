"""The OpenAPI schema says exactly what the API accepts: the Idempotency-Key's
format, page and page_size, strictly read filters, decimal strings and the
sign-in endpoint's answers; and the server refuses what the schema refuses."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

from api.idempotency import IDEMPOTENCY_HEADER
from api.schema import decimal_pattern
from tests.api.journey import API

pytestmark = pytest.mark.django_db

MUTATING = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _parameter(operation, name, location):
    return next(
        (
            p
            for p in operation.get("parameters", [])
            if p["name"] == name and p["in"] == location
        ),
        None,
    )


def test_every_idempotent_mutation_states_the_keys_format(schema):
    stated = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in MUTATING:
                continue
            header = _parameter(operation, IDEMPOTENCY_HEADER, "header")
            if path.endswith(("/auth/token/", "/journal-heads/check/")):
                # Not idempotent views: the header would be ignored.
                assert header is None, path
                continue
            assert header is not None, (method, path)
            assert header["schema"]["pattern"] == "^[!-~]{1,100}$"
            assert header["schema"]["maxLength"] == 100
            stated += 1
    assert stated > 15


def test_the_schemas_key_pattern_is_the_servers(schema):
    pattern = re.compile(
        _parameter(
            schema["paths"]["/api/v1/trade-requests/"]["post"],
            IDEMPOTENCY_HEADER,
            "header",
        )["schema"]["pattern"]
    )
    for key in ("a", "0b6f6c2e-8d7b-4c4e-9d55-4b8a3f0f3d11", "~" * 100):
        assert pattern.fullmatch(key)
    for key in ("", "with space", "é", "x" * 101):
        assert not pattern.fullmatch(key)


def test_a_schema_valid_key_is_accepted(api, staff):
    response = api(staff).post(
        f"{API}/projects/NO-SUCH/submit/", HTTP_IDEMPOTENCY_KEY="~!" * 50
    )
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/batches/", "/class-schemes/", "/projects/"])
def test_page_parameters_are_bounded_in_the_schema(schema, path):
    operation = schema["paths"][f"/api/v1{path}"]["get"]
    assert _parameter(operation, "page_size", "query")["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
    }
    assert _parameter(operation, "page", "query")["schema"]["minimum"] == 1


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"page_size": "null"}, "invalid_page_size"),
        ({"page_size": "0"}, "invalid_page_size"),
        ({"page_size": "201"}, "invalid_page_size"),
        ({"page_size": ["2", "3"]}, "invalid_page_size"),
        ({"page": "abc"}, "invalid_page"),
        ({"page": "0"}, "invalid_page"),
        ({"page": "last"}, "invalid_page"),
    ],
)
@pytest.mark.parametrize("path", ["/class-schemes/", "/projects/"])
def test_malformed_page_parameters_are_refused(api, reference_data, path, query, code):
    response = api(language="zh-hans").get(f"{API}{path}", query)
    assert response.status_code == 400
    body = response.json()
    name = next(iter(query))
    assert body["fields"][name][0]["code"] == code
    assert re.search("[\u4e00-\u9fff]", body["fields"][name][0]["message"])


def test_page_size_up_to_the_maximum_and_a_page_past_the_end(api, reference_data):
    client = api()
    assert client.get(f"{API}/class-schemes/", {"page_size": "200"}).status_code == 200
    past = client.get(f"{API}/class-schemes/", {"page": "999"})
    assert past.status_code == 404


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"text": ""}, "blank"),
        ({"status": ""}, "invalid_choice"),
        ({"status": ["registered", "draft"]}, "repeated_parameter"),
        ({"in_bbox": ""}, "bbox"),
        ({"in_bbox": ["105,26,106,27", "105,26,106,27"]}, "bbox"),
        ({"in_bbox": "1e2,26,106,27"}, "bbox"),
    ],
)
def test_project_filters_are_read_strictly(api, reference_data, query, code):
    response = api().get(f"{API}/projects/", query)
    assert response.status_code == 400
    assert response.json()["fields"][next(iter(query))][0]["code"] == code


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"until": ""}, "invalid"),
        ({"since": "2026-13-01"}, "invalid"),
        ({"batch": "x"}, "invalid"),
        ({"kind": ["issue", "retire"]}, "repeated_parameter"),
    ],
)
def test_journal_filters_are_read_strictly(api, buyer, query, code):
    response = api(buyer).get(f"{API}/ledger-entries/", query)
    assert response.status_code == 400
    assert response.json()["fields"][next(iter(query))][0]["code"] == code


def test_decimal_strings_need_a_digit():
    pattern = re.compile(
        decimal_pattern(
            serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
        )
    )
    for text in ("95.70", "1", "1.", ".5", "12345678.99"):
        assert pattern.fullmatch(text), text
    for text in ("", "-", ".", "-1", "95.705", "123456789"):
        assert not pattern.fullmatch(text), text


def test_sign_in_is_public_and_documents_its_refusals(schema):
    operation = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert {} in operation["security"]
    assert "authorization" in operation["responses"]["400"]["description"]
    assert "429" in operation["responses"]


def test_a_head_to_check_is_json_with_the_published_shape(schema, api):
    operation = schema["paths"]["/api/v1/journal-heads/check/"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json"}
    response = api().post(
        f"{API}/journal-heads/check/", {"format": "x"}, format="multipart"
    )
    assert response.status_code == 415
