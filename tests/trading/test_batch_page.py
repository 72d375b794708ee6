"""The public batch page: what was issued and where its credits are now."""

import pytest
from django.urls import reverse

from tests.trading.conftest import new_key
from trading import services
from trading.selectors import get_batch_whereabouts

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def retire(seller, seller_account, quantity):
    return services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=quantity,
        beneficiary="Guizhou Lvzhu",
        purpose="voluntary",
        reporting_year=2026,
        idempotency_key=new_key(),
    )


def test_whereabouts_add_up_to_the_batch_in_one_query(
    issue, seller, seller_account, admin, second_admin, django_assert_num_queries
):
    batch = issue(quantity=1000, buffer=100)
    settled = retire(seller, seller_account, 300)
    services.approve_request(actor=second_admin, request=settled)
    retire(seller, seller_account, 50)  # pending: reserved
    with django_assert_num_queries(1):
        whereabouts = get_batch_whereabouts(batch=batch)
    assert whereabouts == {
        "held": 550,
        "buffer": 100,
        "listed": 0,
        "reserved": 50,
        "retired": 300,
        "cancelled": 0,
    }
    assert sum(whereabouts.values()) == batch.quantity


def test_the_batch_page_is_public(client, issue, seller, seller_account, second_admin):
    batch = issue(quantity=1000, buffer=100, vintage=2024)
    services.approve_request(
        actor=second_admin, request=retire(seller, seller_account, 250)
    )
    response = client.get(reverse("trading:batch-detail", args=[batch.pk]), **EN)
    assert response.status_code == 200
    body = response.content.decode()
    assert batch.serial_label in body
    assert batch.project.code in body
    assert "2024-01-01 – 2024-12-31" in body
    assert "<strong>1000</strong> t CO2e" in body
    assert '<dd data-whereabouts="retired"><strong>250</strong>' in body
    assert '<dd data-whereabouts="held"><strong>650</strong>' in body
    assert '<dd data-whereabouts="buffer"><strong>100</strong>' in body
    # Issued directly through the ledger: no verification to point to.
    assert "Issued directly by a registry admin." in body
    # Visitors get no links into pages that need an account.
    assert reverse("trading:journal") not in body


def test_the_batch_page_in_chinese(client, issue):
    batch = issue()
    response = client.get(
        reverse("trading:batch-detail", args=[batch.pk]),
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    body = response.content.decode()
    assert "碳信用批次" in body
    assert "缓冲" in body


def test_an_unknown_batch_is_404(client):
    assert client.get(reverse("trading:batch-detail", args=[999])).status_code == 404


def test_account_and_journal_pages_link_to_the_batch(
    client, issue, seller, seller_account
):
    batch = issue()
    url = reverse("trading:batch-detail", args=[batch.pk])
    client.force_login(seller)
    account_page = client.get(
        reverse("trading:account-detail", args=[seller_account.number])
    )
    assert url in account_page.content.decode()
    assert url in client.get(reverse("trading:journal")).content.decode()
