"""The whole journey through the API alone, and where the credits end up."""

import pytest

from tests.api.journey import API, ok
from trading.models import Certificate

pytestmark = pytest.mark.django_db


def test_register_estimate_verify_issue_transfer_retire(journey, api, buyer, staff):
    batch = journey.answers["batch"]
    held = batch["quantity"] - batch["buffer_quantity"]

    whereabouts = ok(api().get(f"{API}/batches/{journey.batch}/"))["whereabouts"]
    assert whereabouts == {
        "held": held - 4 - 1,
        "buffer": batch["buffer_quantity"],
        "listed": 0,
        "reserved": 1,
        "retired": 4,
        "cancelled": 0,
    }

    buyer_api = api(buyer)
    account = ok(buyer_api.get(f"{API}/accounts/{journey.buyer_account}/"))
    assert account["balance"] == {
        "active": 6,
        "listed": 0,
        "reserved": 0,
        "retired": 0,
        "cancelled": 0,
    }
    holdings = ok(buyer_api.get(f"{API}/accounts/{journey.buyer_account}/holdings/"))
    assert [
        (row["batch"], row["state"], row["quantity"]) for row in holdings["results"]
    ] == [(journey.batch, "active", 6)]
    kinds = [
        entry["kind"]
        for entry in ok(buyer_api.get(f"{API}/ledger-entries/"))["results"]
    ]
    assert sorted(kinds) == ["reserve", "retire", "transfer"]

    seller = ok(api(staff).get(f"{API}/accounts/{journey.seller_account}/"))
    assert seller["balance"]["active"] == held - 11
    assert seller["balance"]["reserved"] == 1


def test_the_retirement_is_proved_by_its_certificate_and_its_serials(journey, api):
    certificate = Certificate.objects.get(trade_request=journey.retirement)
    body = ok(api().get(f"{API}/certificates/{certificate.number}/"))
    assert body["valid"] is True and body["problems"] == []
    assert body["quantity"] == 4
    assert body["verification_url"].endswith(f"/verify/{certificate.token}/")
    entry = body["entries"][0]
    assert entry["valid"] and len(entry["entry_hash"]) == 64
    # By the verification code in the QR code, too.
    assert ok(api().get(f"{API}/certificates/{certificate.token}/")) == body

    serial = ok(api().get(f"{API}/serials/{entry['first_serial']}/"))
    assert serial["state"] == "retired"
    assert serial["certificate"]["number"] == certificate.number
    assert serial["batch"] == journey.batch


@pytest.mark.parametrize(
    "path",
    [
        "/certificates/BJ-RC-2026-999999/",
        "/certificates/not-a-number/",
        "/certificates/%27%20OR%201=1--/",
        "/serials/0/",
        "/serials/99999999999999999999/",
        "/serials/12a/",
    ],
)
def test_unknown_and_malformed_lookups_are_json_404s(api, path):
    response = api().get(API + path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
