"""The pure arithmetic, including InVEST's published carbon-model test values."""

from datetime import date
from decimal import Decimal as D

import pytest

from estimation.calculations import (
    CO2_PER_C,
    CalculationError,
    Coefficient,
    decimal_from,
    flux_sink,
    invest_valuation_constant,
    issuable_credits,
    map_to_ecosystems,
    period_years,
    stock_difference,
)

# natcap/invest tests/test_carbon.py pools: c_above, c_below, c_soil, c_dead (t C/ha).
INVEST_POOLS = {
    "1": {"above": D(15), "below": D(10), "soil": D(60), "dead": D(1)},
    "2": {"above": D(5), "below": D(3), "soil": D(20), "dead": D(0)},
    "3": {"above": D(2), "below": D(1), "soil": D(5), "dead": D(0)},
}


def test_flux_method_area_times_coefficient_in_carbon_and_co2e():
    estimate = flux_sink(
        {"forest": D(1000), "farmland": D(500), "grassland": D(200), "built_up": D(50)},
        {
            "forest": Coefficient(D("0.581"), "t_c"),
            "farmland": Coefficient(D("0.007"), "t_c"),
            "grassland": Coefficient(D("0.021"), "t_c"),
            "built_up": Coefficient(D(0), "t_c"),
        },
        years=D(5),
        price_cny_per_t_co2e=D("95.70"),
    )
    forest = estimate.ecosystems[0]
    assert forest.ecosystem == "forest"
    assert forest.rank == 1
    assert forest.sink_t_c_per_year == D("581.000")
    assert forest.sink_t_co2e_per_year == (D("581") * CO2_PER_C).quantize(D("0.001"))
    assert forest.sink_t_co2e_period == (D("581") * CO2_PER_C * 5).quantize(D("0.001"))
    assert forest.value_cny_per_year == (D("581") * CO2_PER_C * D("95.70")).quantize(
        D("0.01")
    )
    assert forest.share == D("0.5714")
    assert [row.ecosystem for row in estimate.ecosystems] == [
        "forest",
        "grassland",
        "farmland",
        "built_up",
    ]
    assert estimate.totals.area_ha == D("1750.0000")
    assert estimate.totals.sink_t_c_per_year == D("588.700")  # 581 + 3.5 + 4.2


def test_coefficients_in_co2_and_emission_convention_are_converted():
    co2 = Coefficient(D("3.9"), "t_co2")
    assert co2.t_co2e_per_ha_year() == D("3.9")
    emission = Coefficient(D("0.422"), "t_c", sign="emission_positive")
    assert emission.t_co2e_per_ha_year() == D("-0.422") * CO2_PER_C


def test_unknown_codes_are_reported_with_their_area():
    by_ecosystem, unmapped = map_to_ecosystems(
        {"1": D(10), "2": D(5), "99": D("0.5")}, {"1": "forest", "2": "forest"}
    )
    assert by_ecosystem == {"forest": D(15)}
    assert unmapped == {"99": D("0.5")}


@pytest.mark.parametrize(
    ("price", "rate", "change", "start", "end", "expected"),
    [
        (D(43), D("-7.1"), D("2.8"), 2016, 2030, D("59.00136")),
        (D(50), D(50), D(5), 2010, 2012, D("40.87302")),
        (D(43), D(0), D(0), 2016, 2030, D(43)),
    ],
)
def test_invest_valuation_constant_matches_the_published_values(
    price, rate, change, start, end, expected
):
    constant = invest_valuation_constant(
        price=price,
        discount_rate_percent=rate,
        rate_change_percent=change,
        years=end - start,
    )
    assert constant.quantize(D("0.00001")) == expected


def test_invest_stock_difference_per_hectare_and_on_a_100_m2_raster():
    per_ha = stock_difference(
        baseline_ha={"1": D(1)},
        alternate_ha={"2": D(1)},
        pools_by_class=INVEST_POOLS,
        valuation={
            "price": D(43),
            "discount_rate_percent": D("-7.1"),
            "rate_change_percent": D("2.8"),
            "years": 14,
        },
    )
    assert (per_ha.baseline_t_c, per_ha.alternate_t_c, per_ha.change_t_c) == (
        D(86),
        D(28),
        D(-58),
    )
    assert per_ha.npv.quantize(D("0.001")) == D("-3422.079")

    # InVEST's 10 x 10 raster of 1 m pixels: 100 m² = 0.01 ha.
    raster = stock_difference(
        baseline_ha={"1": D("0.01")},
        alternate_ha={"2": D("0.01")},
        pools_by_class=INVEST_POOLS,
        valuation={
            "price": D(43),
            "discount_rate_percent": D("-7.1"),
            "rate_change_percent": D("2.8"),
            "years": 14,
        },
    )
    assert raster.baseline_t_c == D("0.86")
    assert raster.alternate_t_c == D("0.28")
    assert raster.change_t_c == D("-0.58")
    assert raster.npv.quantize(D("0.0001")) == D("-34.2208")
    undiscounted = stock_difference(
        baseline_ha={"1": D(1)},
        alternate_ha={"2": D(1)},
        pools_by_class=INVEST_POOLS,
        valuation={
            "price": D(43),
            "discount_rate_percent": D(0),
            "rate_change_percent": D(0),
            "years": 14,
        },
    )
    assert undiscounted.npv == D(-2494)


def test_stock_difference_refuses_a_class_without_pools():
    with pytest.raises(CalculationError) as raised:
        stock_difference(
            baseline_ha={"7": D(1)}, alternate_ha={}, pools_by_class=INVEST_POOLS
        )
    assert raised.value.code == "pools"


@pytest.mark.parametrize(
    ("start", "end", "years"),
    [
        (date(2021, 1, 1), date(2021, 12, 31), D(1)),
        (date(2020, 1, 1), date(2024, 12, 31), D(5)),
        (date(2021, 1, 1), date(2021, 6, 30), D("0.4959")),
        (date(2020, 2, 29), date(2021, 2, 27), D(1)),
    ],
)
def test_period_years_counts_calendar_years(start, end, years):
    assert period_years(start, end) == years


@pytest.mark.parametrize(
    ("t_co2e", "credits"),
    [(D("1234.999"), 1234), (D("0.999"), 0), (D(0), 0), (D(-5), 0), (D(7), 7)],
)
def test_issuable_credits_always_round_down(t_co2e, credits):
    assert issuable_credits(t_co2e) == credits


@pytest.mark.parametrize("bad", [0.1, "abc", "NaN", "Infinity", ""])
def test_decimal_from_refuses_floats_and_non_numbers(bad):
    with pytest.raises(CalculationError):
        decimal_from(bad, name="price")


def test_negative_price_and_empty_period_are_refused():
    with pytest.raises(CalculationError):
        flux_sink({}, {}, years=D(0))
    with pytest.raises(CalculationError):
        flux_sink({}, {}, years=D(1), price_cny_per_t_co2e=D(-1))
