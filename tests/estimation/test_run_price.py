"""A run's carbon price is read once (common.quantities.parse_price), by the
service: the web form and the API refuse 95.705 with the same code and message
and queue nothing, and record 95.7 as 95.70 alike. The form used to round
95.705 to 95.70 silently while the API refused it."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from estimation.models import EstimationRun
from estimation.services.runs import create_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_input(project, dataset, default_methodology):
    return {
        "project": project,
        "dataset": dataset,
        "methodology": default_methodology,
    }


def _by_form(client, staff, run_input, price):
    client.force_login(staff)
    response = client.post(
        reverse("estimation:run-create"),
        {
            "project": run_input["project"].pk,
            "dataset": run_input["dataset"].pk,
            "methodology": run_input["methodology"].pk,
            "period_start": "2021-01-01",
            "period_end": "2021-12-31",
            "price_cny_per_t_co2e": price,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    if response.status_code == 302:
        return None
    assert response.status_code == 400
    [error] = response.context["form"].errors.as_data()["price_cny_per_t_co2e"]
    return {"code": error.code, "message": error.message}


def _by_api(staff, run_input, price):
    client = APIClient()
    client.force_authenticate(user=staff)
    response = client.post(
        "/api/v1/estimation-runs/",
        {
            "project": run_input["project"].code,
            "dataset": run_input["dataset"].pk,
            "methodology": run_input["methodology"].pk,
            "period_start": "2021-01-01",
            "period_end": "2021-12-31",
            "price_cny_per_t_co2e": price,
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    if response.status_code == 201:
        return None
    assert response.status_code == 400
    [error] = response.json()["fields"]["price_cny_per_t_co2e"]
    return error


@pytest.mark.parametrize(
    "price, code",
    [
        ("95.705", "price_places"),
        ("95.7001", "price_places"),
        ("-0.01", "negative"),
        ("abc", "not_a_number"),
        ("10000000000", "too_large"),
    ],
)
def test_the_form_and_the_api_refuse_a_run_price_alike_and_queue_nothing(
    client, staff, run_input, price, code
):
    by_form = _by_form(client, staff, run_input, price)
    by_api = _by_api(staff, run_input, price)
    assert by_form == by_api
    assert by_form["code"] == code
    assert not EstimationRun.objects.exists()


def test_more_places_than_the_fen_is_refused_in_words(client, staff, run_input):
    assert _by_form(client, staff, run_input, "95.705") == {
        "code": "price_places",
        "message": "Give the price to at most 2 decimal places, e.g. 95.70.",
    }


@pytest.mark.parametrize("price", ["95.70", "95.7", 95.7])
def test_the_form_and_the_api_record_a_run_price_to_the_fen_alike(
    client, staff, run_input, price
):
    assert _by_form(client, staff, run_input, str(price)) is None
    assert _by_api(staff, run_input, price) is None
    prices = list(EstimationRun.objects.values_list("price_cny_per_t_co2e", flat=True))
    assert prices == [Decimal("95.70"), Decimal("95.70")]
    assert all(str(p) == "95.70" for p in prices)


def test_no_price_is_no_price(client, staff, run_input):
    assert _by_form(client, staff, run_input, "") is None
    assert _by_api(staff, run_input, None) is None
    assert list(
        EstimationRun.objects.values_list("price_cny_per_t_co2e", flat=True)
    ) == [None, None]


def test_the_service_is_the_one_reader(staff, run_input):
    from datetime import date

    with pytest.raises(ValidationError) as refusal:
        create_run(
            actor=staff,
            period_start=date(2021, 1, 1),
            period_end=date(2021, 12, 31),
            price_cny_per_t_co2e=Decimal("95.705"),
            **run_input,
        )
    assert refusal.value.error_dict["price_cny_per_t_co2e"][0].code == "price_places"
    assert not EstimationRun.objects.exists()
