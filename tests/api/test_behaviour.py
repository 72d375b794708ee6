"""API-wide behaviour: idempotency, the error format, throttling, filters,
pagination and the documentation page."""

import json
import re

import pytest
from rest_framework.throttling import SimpleRateThrottle

from api.models import IdempotencyRecord
from registry.models import Project
from tests.api.journey import API, ok
from tests.estimation.conftest import PARCEL
from tests.registry.projects import square
from trading.models import LedgerEntry, TradeRequest

pytestmark = pytest.mark.django_db

CHINESE = re.compile("[\u4e00-\u9fff]")


def project_body(owner, name="Idempotent project", geometry=PARCEL):
    return {
        "name_zh": "幂等项目",
        "name_en": name,
        "owner": owner.pk,
        "county": "520521",
        "crediting_start": "2021-01-01",
        "crediting_end": "2050-12-31",
        "ecosystem_focus": "forest",
        "boundary": json.loads(geometry.json),
    }


def test_a_repeat_with_the_same_key_and_body_returns_the_first_answer(
    api, staff, owner_org, reference_data
):
    client = api(staff)
    first = client.post(
        f"{API}/projects/", project_body(owner_org), HTTP_IDEMPOTENCY_KEY="k-1"
    )
    again = client.post(
        f"{API}/projects/", project_body(owner_org), HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Project.objects.count() == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(
    api, staff, owner_org, reference_data
):
    client = api(staff)
    ok(
        client.post(
            f"{API}/projects/", project_body(owner_org), HTTP_IDEMPOTENCY_KEY="k-2"
        ),
        201,
    )
    response = client.post(
        f"{API}/projects/",
        project_body(owner_org, name="Another"),
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert Project.objects.count() == 1


def test_keys_are_per_user(api, staff, make_user, owner_org, reference_data):
    from registry.roles import Role

    colleague = make_user(role=Role.BUREAU_STAFF, organization=owner_org)
    body = project_body(owner_org)
    ok(api(staff).post(f"{API}/projects/", body, HTTP_IDEMPOTENCY_KEY="same"), 201)
    body["boundary"] = json.loads(square(105.62, 27.15, 300).json)
    ok(api(colleague).post(f"{API}/projects/", body, HTTP_IDEMPOTENCY_KEY="same"), 201)
    assert Project.objects.count() == 2


def test_a_failed_request_is_not_remembered(api, staff, owner_org, reference_data):
    client = api(staff)
    bad = project_body(owner_org)
    bad["county"] = "999999"
    assert (
        client.post(f"{API}/projects/", bad, HTTP_IDEMPOTENCY_KEY="k-3").status_code
        == 400
    )
    ok(
        client.post(
            f"{API}/projects/", project_body(owner_org), HTTP_IDEMPOTENCY_KEY="k-3"
        ),
        201,
    )


def test_a_malformed_key_is_refused(api, staff, owner_org, reference_data):
    response = api(staff).post(
        f"{API}/projects/", project_body(owner_org), HTTP_IDEMPOTENCY_KEY="x" * 101
    )
    assert response.status_code == 400
    assert response.json()["fields"]["Idempotency-Key"][0]["code"] == "idempotency_key"
    assert not Project.objects.exists()


def test_trade_request_keys_act_once_in_the_journal(journey, api, staff):
    client = api(staff)
    body = {
        "kind": "transfer",
        "from_account": journey.seller_account_number,
        "to_account": journey.buyer_account_number,
        "quantity": 2,
        "price_per_tonne": "80.00",
    }
    entries = LedgerEntry.objects.count()
    first = ok(
        client.post(f"{API}/trade-requests/", body, HTTP_IDEMPOTENCY_KEY="t-1"), 201
    )
    again = ok(
        client.post(f"{API}/trade-requests/", body, HTTP_IDEMPOTENCY_KEY="t-1"), 201
    )
    assert again["id"] == first["id"]
    assert first["idempotency_key"] == "t-1"
    assert LedgerEntry.objects.count() == entries + 1  # one reservation
    body["quantity"] = 3
    response = client.post(f"{API}/trade-requests/", body, HTTP_IDEMPOTENCY_KEY="t-1")
    assert response.status_code == 409
    assert TradeRequest.objects.filter(idempotency_key="t-1").count() == 1
    assert IdempotencyRecord.objects.filter(key="t-1").count() == 1


def test_service_refusals_are_json_with_a_code_and_a_translated_message(
    journey, api, staff
):
    body = {
        "kind": "transfer",
        "from_account": journey.seller_account_number,
        "to_account": journey.buyer_account_number,
        "quantity": 10**9,
        "price_per_tonne": "80.00",
    }
    english = api(staff).post(f"{API}/trade-requests/", body).json()
    chinese = api(staff, language="zh-CN").post(f"{API}/trade-requests/", body).json()
    assert english["code"] == chinese["code"] == "insufficient_credits"
    field = chinese["fields"]["quantity"][0]
    assert CHINESE.search(field["message"])
    assert not CHINESE.search(english["fields"]["quantity"][0]["message"])


def test_state_conflicts_answer_409(journey, api, admin):
    response = api(admin).post(f"{API}/trade-requests/{journey.transfer}/approve/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_pending"


def test_an_initiator_cannot_review_their_own_cancellation(
    journey, api, admin, second_admin
):
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
    own = api(admin).post(f"{API}/trade-requests/{created['id']}/approve/")
    assert own.status_code == 403  # "may not do this", as docs/api.md says
    assert own.json()["code"] == "own_request"
    assert TradeRequest.objects.get(pk=created["id"]).status == "pending"
    settled = ok(
        api(second_admin).post(f"{API}/trade-requests/{created['id']}/approve/")
    )
    assert settled["status"] == "settled"


def test_malformed_ids_are_json_404s(api, staff):
    response = api(staff).get(f"{API}/estimation-runs/not-a-number/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_anonymous_callers_are_throttled(api, monkeypatch, db):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/minute", "auth": "2/minute"}
    )
    client = api()
    statuses = [client.get(f"{API}/methodologies/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    body = client.get(f"{API}/batches/").json()
    assert body["code"] == "throttled"


def test_sign_in_is_throttled(api, staff, monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100/minute", "auth": "2/minute"}
    )
    client = api()
    statuses = [
        client.post(
            f"{API}/auth/token/", {"username": staff.username, "password": "wrong"}
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_projects_filter_by_bounding_box_county_and_status(journey, api):
    client = api()
    around = "105.60,27.13,105.62,27.15"
    inside = ok(client.get(f"{API}/projects/", {"in_bbox": around}))
    assert [f["id"] for f in inside["features"]] == [journey.project]
    far = ok(client.get(f"{API}/projects/", {"in_bbox": "106.0,26.0,106.1,26.1"}))
    assert far["features"] == []
    assert ok(client.get(f"{API}/projects/", {"county": "520502"}))["features"] == []
    registered = ok(client.get(f"{API}/projects/", {"status": "registered"}))
    assert registered["count"] == 1
    for bad in ("1,2,3", "nan,0,1,1", "106,27,105,28"):
        response = client.get(f"{API}/projects/", {"in_bbox": bad})
        assert response.status_code == 400
        assert response.json()["fields"]["in_bbox"][0]["code"] == "bbox"
    response = client.get(f"{API}/projects/", {"status": "flying"})
    assert response.status_code == 400


def test_lists_are_paginated(api, reference_data):
    body = ok(api().get(f"{API}/class-schemes/", {"page_size": 2}))
    assert len(body["results"]) == 2
    assert body["count"] > 2
    assert "page=2" in body["next"]


def test_documentation_page_uses_the_projects_own_static_files(client, db):
    page = client.get(f"{API}/docs/").content.decode()
    scripts = re.findall(r'src="([^"]+)"', page)
    assert scripts
    assert all(src.startswith("/static/") for src in scripts)
    assert "//" not in "".join(scripts)
    for src in scripts:
        assert client.get(src).status_code == 200
    schema = client.get(f"{API}/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/estimation-runs/{id}/issue/" in schema["paths"]


def test_sign_in_is_locked_after_repeated_failures_like_the_pages(api, staff):
    client = api(language="zh-hans")
    for _ in range(5):
        response = client.post(
            f"{API}/auth/token/", {"username": staff.username, "password": "wrong"}
        )
        assert response.status_code == 400
    locked = client.post(
        f"{API}/auth/token/",
        {"username": staff.username, "password": "correct horse battery"},
    )
    assert locked.status_code == 429
    assert locked.json()["code"] == "throttled"
    assert "15" in locked.json()["message"]
