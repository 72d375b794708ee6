"""The whole journey through the API alone: register a project, estimate its
sink, verify, issue, transfer, retire. Each step asserts its answer, so the
journey is a test by itself and a fixture for the permission tests."""

import json
from dataclasses import dataclass, field

from tests.estimation.conftest import PARCEL, write_landcover

API = "/api/v1"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()


@dataclass
class Journey:
    """What the walk made: ids and numbers, for later steps and checks."""

    token: dict = field(default_factory=dict)
    project: str = ""
    dataset: int = 0
    run: int = 0
    verification: int = 0
    batch: int = 0
    seller_account: int = 0
    seller_account_number: str = ""
    buyer_account: int = 0
    buyer_account_number: str = ""
    transfer: int = 0
    retirement: int = 0
    pending_transfer: int = 0
    answers: dict = field(default_factory=dict)


def sign_in(client, user, password="correct horse battery") -> str:
    body = ok(
        client.post(
            f"{API}/auth/token/", {"username": user.username, "password": password}
        )
    )
    return body["token"]


def walk(
    *, api, staff, verifier, admin, second_admin, buyer, owner_org, tmp_path, on_commit
):
    """``on_commit``: django_capture_on_commit_callbacks, so the queued
    estimation task runs (eagerly) when the request's transaction commits."""
    journey = Journey()
    anonymous = api()
    clients = {}
    for name, user in [
        ("staff", staff),
        ("verifier", verifier),
        ("admin", admin),
        ("second_admin", second_admin),
        ("buyer", buyer),
    ]:
        journey.token[name] = sign_in(anonymous, user)
        client = api()
        client.credentials(HTTP_AUTHORIZATION=f"Token {journey.token[name]}")
        clients[name] = client

    # Register: a draft with its boundary, submitted, approved.
    project = ok(
        clients["staff"].post(
            f"{API}/projects/",
            {
                "name_zh": "新春村碳汇林",
                "name_en": "Xinchun village carbon forest",
                "owner": owner_org.pk,
                "county": "520521",
                "crediting_start": "2021-01-01",
                "crediting_end": "2050-12-31",
                "ecosystem_focus": "forest",
                "boundary": json.loads(PARCEL.json),
            },
            format="json",
        ),
        201,
    )
    assert project["type"] == "Feature"
    assert project["properties"]["status"] == "draft"
    journey.project = code = project["id"]
    ok(clients["staff"].post(f"{API}/projects/{code}/submit/"))
    registered = ok(
        clients["admin"].post(f"{API}/projects/{code}/approve/", {"reason": "ok"})
    )
    assert registered["properties"]["status"] == "registered"

    # Estimate: upload the land cover, queue a run, poll it.
    landcover = write_landcover(tmp_path / "landcover.tif")
    with landcover.open("rb") as handle:
        dataset = ok(
            clients["staff"].post(
                f"{API}/landcover-datasets/",
                {
                    "organization": owner_org.pk,
                    "name_zh": "土地覆盖",
                    "name_en": "Land cover",
                    "product": "modis-igbp",
                    "year": 2019,
                    "scheme": "modis-igbp",
                    "file": handle,
                },
                format="multipart",
            ),
            201,
        )
    journey.dataset = dataset["id"]
    methodology = next(
        item
        for item in ok(anonymous.get(f"{API}/methodologies/"))["results"]
        if item["is_default"]
    )
    with on_commit(execute=True):
        run = ok(
            clients["staff"].post(
                f"{API}/estimation-runs/",
                {
                    "project": code,
                    "dataset": dataset["id"],
                    "methodology": methodology["id"],
                    "period_start": "2021-01-01",
                    "period_end": "2025-12-31",
                    "price_cny_per_t_co2e": "95.70",
                },
            ),
            201,
        )
    assert run["status"] == "queued"
    journey.run = run["id"]
    run = ok(clients["staff"].get(f"{API}/estimation-runs/{run['id']}/"))
    assert run["status"] == "succeeded", run["error_message"]
    assert run["progress"] == 100
    assert {row["ecosystem"] for row in run["results"]} >= {"forest", "farmland"}
    journey.answers["run"] = run

    # Verify: submitted by the owner's staff, approved by an outside verifier.
    verification = ok(
        clients["staff"].post(
            f"{API}/verifications/", {"run": run["id"], "note": "First period."}
        ),
        201,
    )
    journey.verification = verification["id"]
    approved = ok(
        clients["verifier"].post(
            f"{API}/verifications/{verification['id']}/approve/",
            {"reasons": "Map and coefficients checked."},
        )
    )
    assert approved["status"] == "approved"

    # Issue: the run's approved verification becomes a batch.
    issued = ok(clients["admin"].post(f"{API}/estimation-runs/{run['id']}/issue/"))
    assert issued["status"] == "issued"
    batch = issued["batch"]
    journey.batch = batch["id"]
    assert batch["quantity"] > batch["buffer_quantity"] > 0
    journey.answers["batch"] = batch

    # Transfer: the owner sells 10 t to the buyer; an admin settles it.
    seller_account = next(
        account
        for account in ok(clients["staff"].get(f"{API}/accounts/"))["results"]
        if account["kind"] == "holding"
    )
    journey.seller_account = seller_account["id"]
    journey.seller_account_number = seller_account["number"]
    held = batch["quantity"] - batch["buffer_quantity"]
    assert seller_account["balance"]["active"] == held
    buyer_account = ok(clients["buyer"].get(f"{API}/accounts/"))["results"][0]
    journey.buyer_account = buyer_account["id"]
    journey.buyer_account_number = buyer_account["number"]
    transfer = ok(
        clients["staff"].post(
            f"{API}/trade-requests/",
            {
                "kind": "transfer",
                "from_account": seller_account["number"],
                "to_account": buyer_account["number"],
                "quantity": 10,
                "price_per_tonne": "95.70",
            },
            HTTP_IDEMPOTENCY_KEY="journey-transfer-1",
        ),
        201,
    )
    assert transfer["status"] == "pending"
    journey.transfer = transfer["id"]
    settled = ok(
        clients["admin"].post(f"{API}/trade-requests/{transfer['id']}/approve/")
    )
    assert settled["status"] == "settled"

    # Retire: the buyer retires 4 t for itself.
    retirement = ok(
        clients["buyer"].post(
            f"{API}/trade-requests/",
            {
                "kind": "retirement",
                "from_account": buyer_account["number"],
                "quantity": 4,
                "beneficiary": "Buyer company",
                "purpose": "voluntary",
                "reporting_year": 2025,
            },
        ),
        201,
    )
    journey.retirement = retirement["id"]
    ok(clients["admin"].post(f"{API}/trade-requests/{retirement['id']}/approve/"))

    # A request left pending, for the review permission checks.
    pending = ok(
        clients["staff"].post(
            f"{API}/trade-requests/",
            {
                "kind": "transfer",
                "from_account": seller_account["number"],
                "to_account": buyer_account["number"],
                "quantity": 1,
                "price_per_tonne": "90",
            },
        ),
        201,
    )
    journey.pending_transfer = pending["id"]
    return journey
