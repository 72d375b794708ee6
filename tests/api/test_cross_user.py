"""Every endpoint, called as a user of another organization and anonymously,
shows nothing it should not and changes nothing."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from api.models import IdempotencyRecord
from estimation.models import EstimationRun, LandCoverDataset, Verification
from registry.models import Project
from registry.roles import Role
from tests.api.journey import API, ok
from tests.estimation.conftest import PARCEL
from tests.registry.factories import OrganizationFactory
from trading.models import (
    Certificate,
    CreditBatch,
    LedgerEntry,
    Listing,
    Order,
    TradeRequest,
)

pytestmark = pytest.mark.django_db

# (method, path template, body): every operation in the schema. Templates name
# the journey's objects, which belong to the owner organization.
WRITES = [
    ("post", "/projects/", "project"),
    ("put", "/projects/{draft}/", "project"),
    ("patch", "/projects/{draft}/", {"name_en": "Taken"}),
    ("patch", "/projects/{project}/", {"name_en": "Taken"}),
    ("post", "/projects/{draft}/submit/", {}),
    ("post", "/projects/{project}/approve/", {"reason": "x"}),
    ("post", "/projects/{project}/return/", {"reason": "x"}),
    ("post", "/projects/{project}/suspend/", {"reason": "x"}),
    ("post", "/projects/{project}/reinstate/", {"reason": "x"}),
    ("post", "/projects/{project}/close/", {"reason": "x"}),
    ("post", "/landcover-datasets/", "dataset"),
    ("post", "/estimation-runs/", "run"),
    ("post", "/estimation-runs/{run}/issue/", {}),
    ("post", "/estimation-runs/{run}/retry/", {}),
    ("post", "/estimation-runs/{run}/cancel/", {}),
    ("post", "/verifications/", "verification"),
    ("post", "/verifications/{verification}/approve/", {"reasons": "x"}),
    ("post", "/verifications/{verification}/reject/", {"reasons": "x"}),
    ("post", "/trade-requests/", "transfer"),
    ("post", "/trade-requests/{pending}/approve/", {}),
    ("post", "/trade-requests/{pending}/reject/", {"reason": "x"}),
    ("post", "/trade-requests/{order_request}/approve/", {}),
    ("post", "/listings/", "listing"),
    ("post", "/listings/{listing}/lower/", {"quantity_left": 1}),
    ("post", "/listings/{listing}/withdraw/", {}),
    ("post", "/orders/", "order"),
    ("post", "/orders/{order}/confirm-payment/", "payment"),
    ("post", "/orders/{order}/decline/", {"reason": "x"}),
]
PRIVATE_DETAILS = [
    "/organizations/{owner_org}/",
    "/accounts/{seller_account}/",
    "/accounts/{seller_account}/holdings/",
    "/accounts/{seller_account}/listings/",
    "/projects/{draft}/",
    "/landcover-datasets/{dataset}/",
    "/estimation-runs/{run}/",
    "/verifications/{verification}/",
    "/trade-requests/{transfer}/",
    "/trade-requests/{pending}/",
    "/trade-requests/{order_request}/",
    "/orders/{order}/",
    "/ledger-entries/{issue_entry}/",
]
# List -> what in each item names it, and the journey's ids that must not show.
PRIVATE_LISTS = {
    "/organizations/": ("id", ["owner_org"]),
    "/accounts/": ("id", ["seller_account", "buyer_account"]),
    "/projects/": ("id", ["draft"]),
    "/landcover-datasets/": ("id", ["dataset"]),
    "/estimation-runs/": ("id", ["run"]),
    "/verifications/": ("id", ["verification"]),
    "/trade-requests/": ("id", ["transfer", "pending", "retirement", "order_request"]),
    "/orders/": ("id", ["order"]),
    "/ledger-entries/": ("sequence", ["issue_entry"]),
}
PUBLIC = [
    "/projects/",
    "/projects/{project}/",
    "/methodologies/",
    "/methodologies/{methodology}/",
    "/class-schemes/",
    "/class-schemes/modis-igbp/",
    "/batches/",
    "/batches/{batch}/",
    "/listings/",
    "/listings/{listing}/",
    "/serials/{serial}/",
    "/certificates/{certificate}/",
    "/journal-heads/",
    "/journal-heads/public-key/",
    "/schema/",
]
SIGN_IN = [("post", "/auth/token/")]
# Public checks that change nothing (tests/public/test_anchors.py).
PUBLIC_CHECKS = [("post", "/journal-heads/check/")]


@pytest.fixture
def objects(journey, api, staff, buyer, owner_org):
    """The journey's objects by name, plus a draft of the owner's and, on the
    market, a listing of the owner's and the buyer's order from it."""
    draft = ok(
        api(staff).post(
            f"{API}/projects/",
            {
                "name_zh": "草稿",
                "name_en": "Draft",
                "owner": owner_org.pk,
                "county": "520521",
                "crediting_start": "2021-01-01",
                "crediting_end": "2050-12-31",
                "ecosystem_focus": "forest",
                "boundary": json.loads(PARCEL.json),
            },
        ),
        201,
    )
    issue_entry = LedgerEntry.objects.get(kind="issue", batch_id=journey.batch)
    listing = ok(
        api(staff).post(
            f"{API}/listings/",
            {
                "account": journey.seller_account_number,
                "batch": journey.batch,
                "quantity": 2,
                "price_per_tonne": "95",
            },
        ),
        201,
    )
    order = ok(
        api(buyer).post(
            f"{API}/orders/",
            {
                "listing": listing["id"],
                "buyer_account": journey.buyer_account_number,
                "quantity": 1,
            },
        ),
        201,
    )
    return {
        "owner_org": owner_org.pk,
        "project": journey.project,
        "draft": draft["id"],
        "dataset": journey.dataset,
        "run": journey.run,
        "verification": journey.verification,
        "batch": journey.batch,
        "seller_account": journey.seller_account,
        "buyer_account": journey.buyer_account,
        "transfer": journey.transfer,
        "retirement": journey.retirement,
        "pending": journey.pending_transfer,
        "issue_entry": issue_entry.sequence,
        "methodology": EstimationRun.objects.get(pk=journey.run).methodology_id,
        "seller_account_number": journey.seller_account_number,
        "buyer_account_number": journey.buyer_account_number,
        "serial": CreditBatch.objects.get(pk=journey.batch).first_serial,
        "certificate": Certificate.objects.get(trade_request=journey.retirement).number,
        "listing": listing["id"],
        "order": order["id"],
        "order_request": order["trade_request"],
        "order_amount": order["amount"],
    }


def _bodies(objects, owner_org):
    project = {
        "name_zh": "冒名",
        "name_en": "Impostor",
        "owner": owner_org.pk,
        "county": "520521",
        "crediting_start": "2021-01-01",
        "crediting_end": "2050-12-31",
        "ecosystem_focus": "forest",
        "boundary": json.loads(PARCEL.json),
    }
    return {
        "project": project,
        "dataset": {
            "organization": owner_org.pk,
            "name_zh": "x",
            "name_en": "x",
            "product": "modis-igbp",
            "year": 2019,
            "scheme": "modis-igbp",
            "file": SimpleUploadedFile("map.tif", b"II*\x00" + bytes(64)),
        },
        "run": {
            "project": objects["project"],
            "dataset": objects["dataset"],
            "methodology": objects["methodology"],
            "period_start": "2021-01-01",
            "period_end": "2025-12-31",
        },
        "verification": {"run": objects["run"]},
        "transfer": {
            "kind": "transfer",
            "from_account": objects["seller_account_number"],
            "to_account": objects["buyer_account_number"],
            "quantity": 1,
            "price_per_tonne": "1",
        },
        "listing": {
            "account": objects["seller_account_number"],
            "batch": objects["batch"],
            "quantity": 1,
            "price_per_tonne": "90",
        },
        "order": {
            "listing": objects["listing"],
            "buyer_account": objects["buyer_account_number"],
            "quantity": 1,
        },
        "payment": {
            "amount": objects["order_amount"],
            "paid_on": timezone.localdate().isoformat(),
            "reference": "x",
        },
    }


def _state():
    return {
        "projects": sorted(Project.objects.values_list("code", "status", "name_en")),
        "datasets": LandCoverDataset.objects.count(),
        "runs": EstimationRun.objects.count(),
        "verifications": sorted(Verification.objects.values_list("pk", "status")),
        "batches": CreditBatch.objects.count(),
        "requests": sorted(TradeRequest.objects.values_list("pk", "status")),
        "entries": LedgerEntry.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "listings": sorted(
            Listing.objects.values_list("pk", "status", "quantity_left")
        ),
        "orders": sorted(
            Order.objects.values_list("pk", "payment_confirmed_at", "declined_at")
        ),
    }


def test_the_tables_cover_every_operation_in_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (method, path.removeprefix(API))
        for path, item in schema["paths"].items()
        for method in item
    }
    tested = {(method, _template(path)) for method, path, _body in WRITES}
    tested |= {("get", _template(path)) for path in PRIVATE_DETAILS + PUBLIC}
    tested |= {("get", path) for path in PRIVATE_LISTS}
    tested |= set(SIGN_IN)
    tested |= set(PUBLIC_CHECKS)
    assert operations - tested == set()


def _template(path: str) -> str:
    """/projects/{draft}/ -> the schema's /projects/{code}/."""
    parts = path.strip("/").split("/")
    names = {
        "projects": "{code}",
        "ledger-entries": "{sequence}",
        "serials": "{serial}",
        "certificates": "{number}",
    }
    if len(parts) > 1 and parts[1].startswith("{"):
        parts[1] = names.get(parts[0], "{id}")
    if parts[0] == "class-schemes" and len(parts) > 1:
        parts[1] = "{slug}"
    return "/" + "/".join(parts) + "/"


@pytest.fixture(params=["other_staff", "other_buyer", "anonymous"])
def outsider(request, make_user, api):
    if request.param == "anonymous":
        return None, api()
    organization = OrganizationFactory()
    role = Role.BUREAU_STAFF if request.param == "other_staff" else Role.BUYER
    user = make_user(role=role, organization=organization)
    return user, api(user)


def test_outsiders_see_nothing_private_and_change_nothing(outsider, objects, owner_org):
    user, client = outsider
    denied = {401} if user is None else {400, 403, 404}
    for path in PRIVATE_DETAILS:
        response = client.get(API + path.format(**objects))
        # Anonymous callers must sign in, except on public lists (a draft
        # there is simply not found).
        expected = {401, 404} if user is None else {404}
        assert response.status_code in expected, path
        assert set(response.json()) == {"code", "message"}

    for path, (key, names) in PRIVATE_LISTS.items():
        response = client.get(API + path)
        if user is None and path != "/projects/":
            assert response.status_code == 401, path
            continue
        body = ok(response)
        items = body["features"] if path == "/projects/" else body["results"]
        shown = {item[key] for item in items}
        assert shown.isdisjoint({objects[name] for name in names}), path

    before = _state()
    bodies = _bodies(objects, owner_org)
    for method, path, body in WRITES:
        data = bodies[body] if isinstance(body, str) else body
        response = getattr(client, method)(
            API + path.format(**objects),
            data,
            format="multipart" if body == "dataset" else "json",
            HTTP_IDEMPOTENCY_KEY=f"outsider-{method}-{path}",
        )
        assert response.status_code in denied, (method, path, response.json())
        assert {"code", "message"} <= set(response.json())
    assert _state() == before


def test_public_endpoints_answer_everyone(objects, api):
    for path in PUBLIC:
        response = api().get(API + path.format(**objects))
        assert response.status_code == 200, path


def test_sign_in_is_refused_with_a_translated_message(api, staff):
    response = api(language="zh-hans").post(
        f"{API}/auth/token/", {"username": staff.username, "password": "wrong"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "authorization"
    assert "无法使用提供的认证信息登录" in body["message"]
