"""Spreadsheet formula injection: every CSV export neutralises text cells a
spreadsheet would run as a formula (a leading =, +, -, @, tab or carriage
return gets a single quote in front, the OWASP rule), while numbers, negative
ones included, stay numbers. The estimation exports are tested in
tests/estimation/test_csv_exports.py; tests/test_layering.py keeps every
export on the helper."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.translation import gettext_lazy

from common.spreadsheets import FORMULA_PREFIXES, csv_writer, neutralise_cell
from registry.models import Project
from trading.models import LedgerEntry

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://x","y")'


def _csv(response) -> list[list[str]]:
    body = (
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    return list(csv.reader(io.StringIO(body.decode().removeprefix("\ufeff"))))


# The helper -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_text_a_spreadsheet_would_run_gets_a_quote(prefix):
    assert (
        neutralise_cell(f"{prefix}cmd|' /C calc'!A0") == f"'{prefix}cmd|' /C calc'!A0"
    )


@pytest.mark.parametrize(
    "value", [-3, Decimal("-3.5"), 0, None, "3-2", "a=b", "", "Ltd. @ Bijie"]
)
def test_numbers_and_harmless_text_pass_unchanged(value):
    assert neutralise_cell(value) == value


def test_lazy_translations_are_text_too():
    pattern = "-%(n)s"  # a variable, so makemessages leaves it out of the catalogue
    assert neutralise_cell(gettext_lazy(pattern) % {"n": 1}) == "'-1"


def test_the_writer_neutralises_whole_rows():
    out = io.StringIO()
    csv_writer(out).writerow([HYPERLINK, Decimal("-1.50"), "@SUM(A1)", -2])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        [f"'{HYPERLINK}", "-1.50", "'@SUM(A1)", "-2"]
    ]


# The public exports -----------------------------------------------------------------


def test_a_formula_beneficiary_is_neutralised_in_retirements_csv(retire, client):
    certificate = retire(quantity=10, beneficiary=HYPERLINK)
    rows = _csv(client.get(reverse("public:retirements-csv")))
    (row,) = [row for row in rows[1:] if row[0] == certificate.number]
    assert row[2] == f"'{HYPERLINK}"
    assert row[5] == "10"


@pytest.fixture
def formula_project(issue):
    """An issued batch whose project's names are formulas."""
    batch = issue(quantity=500, buffer=50)
    Project.objects.filter(pk=batch.project_id).update(
        name_zh="+1+2", name_en="@SUM(A1:A9)"
    )
    return batch


def test_formula_project_names_are_neutralised_in_batches_csv(formula_project, client):
    rows = _csv(client.get(reverse("public:batches-csv")))
    assert rows[1][2:4] == ["'+1+2", "'@SUM(A1:A9)"]
    assert rows[1][7:9] == ["500", "50"]


def test_formula_project_names_are_neutralised_in_buffer_pool_csv(
    formula_project, client
):
    rows = _csv(client.get(reverse("public:buffer-pool-csv")))
    assert rows[1][1:3] == ["'+1+2", "'@SUM(A1:A9)"]
    assert rows[1][3] == "50"


def test_formula_names_are_neutralised_in_the_market_csv(
    formula_project, client, seller, seller_account
):
    from registry.models import Organization
    from tests.public.conftest import new_key
    from trading import market

    market.create_listing(
        actor=seller,
        account=seller_account,
        batch=formula_project,
        quantity=100,
        price_per_tonne="95",
        minimum_lot=10,
        idempotency_key=new_key(),
    )
    seller_account.is_public = True
    seller_account.save()
    Organization.objects.filter(pk=seller_account.organization_id).update(
        name_en="-1+1"
    )
    rows = _csv(client.get(reverse("public:market-csv")))
    assert rows[1][3:5] == ["'+1+2", "'@SUM(A1:A9)"]
    assert rows[1][11:13] == ["95.00", "100"]
    assert rows[1][17] == "'-1+1"


@pytest.mark.parametrize(
    "series", ["years", "ecosystems", "months", "vintages", "ecosystem-sales"]
)
def test_statistics_csv_numbers_stay_numbers(formula_project, retire, client, series):
    retire(quantity=5)
    rows = _csv(client.get(reverse("public:statistics-csv", args=[series])))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith("'")]


def test_a_formula_username_is_neutralised_in_the_journal_csv(
    formula_project, client, admin
):
    # Django usernames may begin with @, + or -.
    admin.username = "-2+3"
    admin.save()
    client.force_login(admin)
    rows = _csv(client.get(reverse("trading:journal-csv")))
    actors = {row[13] for row in rows[1:]}
    assert actors == {"'-2+3"}
    assert len(rows) - 1 == LedgerEntry.objects.count()
