"""A price has one reading (common.quantities.parse_price): the web form and
the API refuse 95.705 with the same code and message, change nothing, and
record 95.70 alike. The form used to store 95.705 as 95.70 silently."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from trading.models import LedgerEntry, TradeRequest

pytestmark = pytest.mark.django_db
API = "/api/v1"


def _by_form(client, seller_account, buyer_account, price, key):
    response = client.post(
        reverse("trading:transfer-create"),
        {
            "from_account": seller_account.pk,
            "to_account_number": buyer_account.number,
            "quantity": "10",
            "price_per_tonne": price,
            "idempotency_key": key,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    if response.status_code == 302:
        return None
    [error] = response.context["form"].errors.as_data()["price_per_tonne"]
    return {"code": error.code, "message": error.message}


def _by_api(user, seller_account, buyer_account, price, key):
    client = APIClient()
    client.force_authenticate(user=user)
    response = client.post(
        f"{API}/trade-requests/",
        {
            "kind": "transfer",
            "from_account": seller_account.number,
            "to_account": buyer_account.number,
            "quantity": 10,
            "price_per_tonne": price,
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    if response.status_code == 201:
        return None
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == body["fields"]["price_per_tonne"][0]["code"]
    return body["fields"]["price_per_tonne"][0]


@pytest.mark.parametrize("price", ["95.705", "95.7001", "-0.01", "abc"])
def test_the_form_and_the_api_refuse_a_price_alike_and_change_nothing(
    client, issue, seller, seller_account, buyer_account, price
):
    issue()
    client.force_login(seller)
    entries = LedgerEntry.objects.count()
    by_form = _by_form(client, seller_account, buyer_account, price, "form-1")
    by_api = _by_api(seller, seller_account, buyer_account, price, "api-1")
    assert by_form == by_api
    assert by_form["code"] in {"price_places", "negative", "not_a_number"}
    assert not TradeRequest.objects.exists()
    assert LedgerEntry.objects.count() == entries


def test_more_places_than_the_fen_is_price_places(
    client, issue, seller, seller_account, buyer_account
):
    issue()
    client.force_login(seller)
    by_form = _by_form(client, seller_account, buyer_account, "95.705", "form-1")
    assert by_form == {
        "code": "price_places",
        "message": "Give the price to at most 2 decimal places, e.g. 95.70.",
    }


@pytest.mark.parametrize("price", ["95.70", "95.7", 95.7])
def test_the_form_and_the_api_record_a_price_to_the_fen_alike(
    client, issue, seller, seller_account, buyer_account, price
):
    issue()
    client.force_login(seller)
    form_price = price if isinstance(price, str) else str(price)
    assert _by_form(client, seller_account, buyer_account, form_price, "f") is None
    assert _by_api(seller, seller_account, buyer_account, price, "a") is None
    prices = [str(request.price_per_tonne) for request in TradeRequest.objects.all()]
    assert prices == ["95.70", "95.70"]
