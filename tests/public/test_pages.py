"""Public registry pages: no login, no N+1, clean answers to bad input."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.models import Account
from tests.public.conftest import CHINESE_BENEFICIARY, new_key
from trading import services

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = [
    "public:search",
    "public:serial-lookup",
    "public:batches",
    "public:retirements",
    "public:buffer-pool",
    "public:statistics",
    "public:market",
]


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("name", PUBLIC_PAGES)
def test_public_pages_need_no_login(client, name, db):
    response = client.get(reverse(name))
    assert response.status_code == 200


def test_the_nav_and_home_page_lead_to_the_public_registry(client, db):
    home = client.get("/").content.decode()
    assert reverse("public:search") in home
    assert reverse("public:retirements") in home


@pytest.mark.parametrize(
    "name", ["public:retirements", "public:batches", "public:buffer-pool"]
)
def test_list_pages_cost_the_same_queries_for_1_or_12_rows(name, client, retire):
    retire(quantity=1)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse(name))
    for _ in range(11):
        retire(quantity=1)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse(name))
    assert response.status_code == 200
    assert len(many) == len(one)
    assert len(many) <= 4


def test_search_finds_projects_batches_and_public_beneficiaries(
    retire, client, project
):
    certificate = retire()
    response = client.get(reverse("public:search"), {"q": "绿色能源"})
    assert certificate.number in response.content.decode()
    response = client.get(reverse("public:search"), {"q": project.code})
    body = response.content.decode()
    assert project.display_name in body
    assert "serial-label" in body  # its batch


def test_search_by_certificate_number_opens_the_certificate(retire, client):
    certificate = retire()
    response = client.get(reverse("public:search"), {"q": certificate.number.lower()})
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "public:certificate", args=[certificate.token]
    )


def test_search_by_serial_offers_the_lookup(issue, client):
    issue()
    response = client.get(reverse("public:search"), {"q": "5"})
    assert reverse("public:serial-lookup") + "?serial=5" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "' OR '1'='1",
        "%",
        "_",
        "'; DROP TABLE trading_certificate; --",
        "<script>alert(1)</script>",
        "\\",
        "9" * 60,
    ],
)
def test_search_survives_injection_attempts(retire, client, query):
    retire()
    response = client.get(reverse("public:search"), {"q": query})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert client.get(reverse("public:retirements")).status_code == 200


def test_an_overlong_search_gets_a_clear_message(client, db):
    response = client.get(reverse("public:search"), {"q": "x" * 500})
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()


def test_serial_lookup_of_an_active_serial_hides_a_private_holder(
    issue, client, seller_account
):
    batch = issue()
    response = client.get(
        reverse("public:serial-lookup"), {"serial": batch.first_serial}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-state="active"' in body
    assert seller_account.number in body
    assert "Forest farm" not in body
    assert "holder not named publicly" in body
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    body = client.get(
        reverse("public:serial-lookup"), {"serial": batch.first_serial}
    ).content.decode()
    assert "Forest farm" in body


def test_serial_lookup_of_a_retired_serial_links_its_certificate(issue, retire, client):
    batch = issue(quantity=1000, buffer=100)
    certificate = retire(quantity=50, batch=batch)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(
            reverse("public:serial-lookup"), {"serial": f"{batch.first_serial + 10:,}"}
        )
    body = response.content.decode()
    assert 'data-state="retired"' in body
    assert certificate.number in body
    assert len(queries) <= 3
    buffered = client.get(
        reverse("public:serial-lookup"), {"serial": batch.last_serial}
    ).content.decode()
    assert "Buffer pool" in buffered


@pytest.mark.parametrize(
    ("text", "status"),
    [("abc", 400), ("-5", 400), ("0", 400), ("1" * 40, 400), ("999999999", 404)],
)
def test_serial_lookup_bad_input(issue, client, text, status):
    issue()
    response = client.get(reverse("public:serial-lookup"), {"serial": text})
    assert response.status_code == status
    assert 'class="error"' in response.content.decode()


@pytest.mark.parametrize("page", ["99999999999999999999999999", "-1", "abc", "0"])
def test_huge_or_malformed_page_numbers_show_a_page(client, retire, page):
    retire()
    for name in ("public:retirements", "public:batches"):
        assert client.get(reverse(name), {"page": page}).status_code == 200


def test_retirements_list_and_csv(retire, client):
    public = retire(quantity=10)
    hidden = retire(quantity=20, beneficiary="Hidden Ltd", public=False)
    body = client.get(reverse("public:retirements")).content.decode()
    assert CHINESE_BENEFICIARY in body and "Anonymous" in body
    rows = _csv(client.get(reverse("public:retirements-csv")))
    assert rows[0][:3] == ["certificate", "retired_on", "beneficiary"]
    by_number = {row[0]: row for row in rows[1:]}
    assert by_number[public.number][2] == CHINESE_BENEFICIARY
    assert by_number[hidden.number][2] == ""
    assert by_number[hidden.number][5] == "20"
    assert by_number[public.number][8].endswith(f"/certificates/{public.token}/")


def test_batches_csv(issue, client):
    batch = issue(quantity=500, buffer=50)
    rows = _csv(client.get(reverse("public:batches-csv")))
    assert rows[1][0] == batch.serial_label
    assert rows[1][7:9] == ["500", "50"]


def test_buffer_pool_balance_withheld_and_used(
    issue, client, admin, second_admin, operator
):
    issue(quantity=1000, buffer=100)
    issue(quantity=500, buffer=40)
    buffer = Account.objects.get(kind="buffer_pool")
    cancellation = services.request_cancellation(
        actor=admin,
        from_account=buffer,
        quantity=30,
        note="Fire in compartment 12",
        idempotency_key=new_key(),
    )
    services.approve_request(actor=second_admin, request=cancellation)
    rows = _csv(client.get(reverse("public:buffer-pool-csv")))
    assert rows[1][3:] == ["140", "110", "0", "30"]
    assert "140" in client.get(reverse("public:buffer-pool")).content.decode()


def test_statistics_issued_retired_and_prices(
    issue, retire, client, seller, seller_account, buyer_account, admin
):
    issue(quantity=1000, buffer=0)
    for quantity, price in ((100, "80.00"), (300, "100.00")):
        request = services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=quantity,
            price_per_tonne=price,
            idempotency_key=new_key(),
        )
        services.approve_request(actor=admin, request=request)
    retire(quantity=50)
    years = _csv(client.get(reverse("public:statistics-csv", args=["years"])))
    assert [int(value) for value in years[1][1:]] == [2000, 50]
    months = _csv(client.get(reverse("public:statistics-csv", args=["months"])))
    assert months[1][1:] == ["400", "95.00"]  # (100 x 80 + 300 x 100) / 400
    vintages = _csv(client.get(reverse("public:statistics-csv", args=["vintages"])))
    assert vintages[1] == ["2025", "400", "95.00"]
    page = client.get(reverse("public:statistics"))
    assert "chart-data" in page.content.decode()
    assert client.get("/public/statistics/nothing.csv").status_code == 404
