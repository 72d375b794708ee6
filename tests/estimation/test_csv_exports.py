"""The estimation exports neutralise spreadsheet formulas and keep numbers,
negative ones included, as numbers (common/spreadsheets.py)."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from estimation.management.commands.estimate import COLUMNS, Command

pytestmark = pytest.mark.django_db


def test_the_run_csv_neutralises_text_and_keeps_negative_numbers(
    client, staff, run_for
):
    run = run_for()
    result = run.results.order_by("rank").first()
    # A source, not a sink (e.g. a degraded wetland), and a unit that reads as
    # a formula: the text is neutralised, the number is not.
    result.sink_t_c_per_year = Decimal("-3.500")
    result.coefficient_unit = "=1+2"
    result.save()
    client.force_login(staff)
    body = client.get(reverse("estimation:run-csv", args=[run.pk])).content.decode()
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    row = next(row for row in rows[1:] if row[1] == result.ecosystem)
    assert row[5] == "'=1+2"
    assert row[6] == "-3.500"


def test_the_estimate_commands_csv_neutralises_text_and_keeps_negative_numbers():
    out = io.StringIO()
    command = Command(stdout=out)
    ecosystem = dict.fromkeys(COLUMNS, 0) | {
        "ecosystem": "@SUM(A1)",
        "coefficient_unit": "-t C",
        "sink_t_c_per_year": Decimal("-3.5"),
    }
    total = {
        "area_ha": 1,
        "sink_t_c_per_year": -3,
        "sink_t_co2e_per_year": -11,
        "value_cny_per_year": None,
    }
    command._write_csv({"ecosystems": [ecosystem], "total": total})
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    row = dict(zip(["rank", *COLUMNS], rows[1], strict=True))
    assert row["ecosystem"] == "'@SUM(A1)"
    assert row["coefficient_unit"] == "'-t C"
    assert row["sink_t_c_per_year"] == "-3.5"
    assert rows[2][5:7] == ["-3", "-11"]
