"""How many credits an estimate becomes: whole tonnes, rounded down twice."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from estimation.calculations import CalculationError, issuance_quantities

FIVE_YEARS = D(5)


def issue(period_t_co2e, *, monitoring=FIVE_YEARS, uncertainty="0.1", share="0.1"):
    return issuance_quantities(
        period_t_co2e=D(period_t_co2e),
        estimate_years=FIVE_YEARS,
        monitoring_years=monitoring,
        uncertainty_deduction=D(uncertainty),
        buffer_share=D(share),
    )


def test_the_whole_period_after_the_uncertainty_deduction_rounded_down():
    result = issue("1000.999")
    assert result.gross_t_co2e == D("1000.999")
    assert result.net_t_co2e == D("900.899")  # 900.8991 shown to the kg
    assert result.quantity == 900
    assert result.buffer_quantity == 90
    assert result.holder_quantity == 810


def test_rounding_is_down_even_a_hair_below_a_whole_tonne():
    # 111.111 x 0.9 = 99.9999 -> 99; buffer 9.9 -> 9.
    result = issue("111.111")
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        99,
        9,
        90,
    )


def test_a_part_of_the_period_gets_the_annual_rate_times_its_years():
    result = issue("1000", monitoring=D(2), uncertainty="0", share="0.25")
    assert result.gross_t_co2e == D("400.000")
    assert (result.quantity, result.buffer_quantity) == (400, 100)


def test_no_buffer_and_no_deduction():
    result = issue("42.5", uncertainty="0", share="0")
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        42,
        0,
        42,
    )


def test_a_negative_estimate_issues_nothing():
    result = issue("-15")
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"share": "1"}, "share"),
        ({"share": "-0.0001"}, "share"),
        ({"uncertainty": "1"}, "share"),
        ({"uncertainty": "-0.1"}, "share"),
        ({"monitoring": D(6)}, "period"),
        ({"monitoring": D(0)}, "period"),
    ],
)
def test_inputs_the_arithmetic_refuses(arguments, code):
    with pytest.raises(CalculationError) as raised:
        issue("100", **arguments)
    assert raised.value.code == code


def test_floats_never_reach_a_credit():
    with pytest.raises(CalculationError) as raised:
        issuance_quantities(
            period_t_co2e=D(100),
            estimate_years=FIVE_YEARS,
            monitoring_years=FIVE_YEARS,
            uncertainty_deduction=D("0.1"),
            buffer_share=0.1,
        )
    assert raised.value.code == "float"


tonnes = st.decimals(min_value=0, max_value=10**9, places=3)
shares = st.decimals(min_value=0, max_value=D("0.9999"), places=4)


@given(estimate=tonnes, uncertainty=shares, share=shares)
def test_never_more_than_the_estimate_supports(estimate, uncertainty, share):
    result = issuance_quantities(
        period_t_co2e=estimate,
        estimate_years=FIVE_YEARS,
        monitoring_years=FIVE_YEARS,
        uncertainty_deduction=uncertainty,
        buffer_share=share,
    )
    net = estimate * (1 - uncertainty)
    assert result.quantity <= net < result.quantity + 1
    assert result.buffer_quantity <= result.quantity * share
    assert result.quantity * share < result.buffer_quantity + 1
    assert result.buffer_quantity + result.holder_quantity == result.quantity
    if result.quantity:
        assert result.holder_quantity >= 1  # issue_batch needs buffer < quantity
