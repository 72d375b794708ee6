"""The holder's dashboard: only their own organizations' credits."""

import pytest
from django.urls import reverse

from registry.roles import Role
from tests.trading.conftest import new_key
from trading import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled_retirement(issue, seller, seller_account, admin):
    issue(quantity=1000, buffer=100, vintage=2024)
    request = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=40,
        beneficiary="林场自用",
        beneficiary_public=False,
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=request)
    pending = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=7,
        beneficiary="待审",
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
    )
    return request.certificate, pending


def test_dashboard_shows_holdings_pending_requests_and_certificates(
    client, seller, settled_retirement, seller_account
):
    certificate, pending = settled_retirement
    client.force_login(seller)
    response = client.get(reverse("trading:dashboard"))
    body = response.content.decode()
    assert response.status_code == 200
    assert certificate.number in body
    assert "林场自用" in body  # the owner sees its own private beneficiary
    assert "not named publicly" in body
    assert reverse("public:certificate-pdf", args=[certificate.token]) in body
    assert f"<td>{pending.pk}</td>" in body
    assert (
        reverse("trading:retirement-create")
        + f"?account={seller_account.number}&amp;vintage=2024"
    ) in body
    assert "853" in body  # 1000 - 100 buffer - 40 retired - 7 reserved


def test_another_organization_sees_none_of_it(
    client, buyer, settled_retirement, make_user
):
    certificate, _pending = settled_retirement
    for user in (buyer, make_user(role=Role.BUYER)):
        client.force_login(user)
        body = client.get(reverse("trading:dashboard")).content.decode()
        assert certificate.number not in body
        assert "林场自用" not in body


def test_dashboard_needs_a_login(client, db):
    response = client.get(reverse("trading:dashboard"))
    assert response.status_code == 302


def test_dashboard_queries_do_not_grow_with_certificates(
    client, seller, settled_retirement, django_assert_max_num_queries
):
    client.force_login(seller)
    with django_assert_max_num_queries(12):
        client.get(reverse("trading:dashboard"))


def test_the_retire_link_prefills_account_and_vintage(
    client, seller, seller_account, issue
):
    issue(vintage=2024)
    client.force_login(seller)
    response = client.get(
        reverse("trading:retirement-create"),
        {"account": seller_account.number, "vintage": "2024"},
    )
    assert 'value="2024"' in response.content.decode()
    response = client.get(
        reverse("trading:retirement-create"), {"vintage": "99999999999999"}
    )
    assert response.status_code == 200
