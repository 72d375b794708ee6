"""Rules of the carbon arithmetic that the mutation run (make mutation) found
untested: the refusals of the stock-difference method and of InVEST's
valuation constant, the ranking of ecosystems, and CO2e from a stock change."""

from datetime import date
from decimal import Decimal as D

import pytest

from estimation.calculations import (
    CalculationError,
    Coefficient,
    EcosystemSink,
    decimal_from,
    ecosystem_of,
    flux_sink,
    invest_valuation_constant,
    issuance_quantities,
    period_years,
    share_from,
    stock_change_estimate,
    stock_difference,
)


def storage(t_c_per_ha):
    # Four pools summing to the given storage per hectare.
    return {"above": D(t_c_per_ha), "below": D(0), "soil": D(0), "dead": D(0)}


POOLS = {
    "forest": storage(10),
    "shrub": storage(10),
    "grass": storage(5),
    "lost": storage(2),
}


def estimate(**overrides):
    arguments = {
        "baseline_ha": {"forest": D(1), "shrub": D(2), "lost": D(3)},
        "alternate_ha": {"forest": D(3), "shrub": D(4), "grass": D(4)},
        "pools_by_ecosystem": POOLS,
        "years": D(2),
        "price_cny_per_t_co2e": D(10),
    } | overrides
    return stock_change_estimate(**arguments)


def test_valuation_refuses_a_period_of_no_years_and_accepts_one():
    with pytest.raises(CalculationError) as raised:
        invest_valuation_constant(
            price=D(43), discount_rate_percent=D(0), rate_change_percent=D(0), years=0
        )
    assert raised.value.code == "period"
    assert str(raised.value) == "the valuation period must be positive"
    one_year = invest_valuation_constant(
        price=D(43), discount_rate_percent=D(5), rate_change_percent=D(0), years=1
    )
    assert one_year == D(43)


def test_stock_change_ranks_by_change_then_area_then_name():
    result = estimate()
    # forest, shrub and grass each gain 20 t C: the larger area ranks first,
    # and shrub and grass (4 ha each) by name; "lost" only loses.
    assert result.ecosystems == [
        EcosystemSink(
            ecosystem="grass",
            area_ha=D("4.0000"),
            share=D("0.3636"),
            coefficient=D(5),
            coefficient_unit="t_c",
            sink_t_c_per_year=D("10.000"),
            sink_t_co2e_per_year=D("36.667"),
            sink_t_co2e_period=D("73.333"),
            value_cny_per_year=D("366.67"),
            rank=1,
        ),
        EcosystemSink(
            ecosystem="shrub",
            area_ha=D("4.0000"),
            share=D("0.3636"),
            coefficient=D(10),
            coefficient_unit="t_c",
            sink_t_c_per_year=D("10.000"),
            sink_t_co2e_per_year=D("36.667"),
            sink_t_co2e_period=D("73.333"),
            value_cny_per_year=D("366.67"),
            rank=2,
        ),
        EcosystemSink(
            ecosystem="forest",
            area_ha=D("3.0000"),
            share=D("0.2727"),
            coefficient=D(10),
            coefficient_unit="t_c",
            sink_t_c_per_year=D("10.000"),
            sink_t_co2e_per_year=D("36.667"),
            sink_t_co2e_period=D("73.333"),
            value_cny_per_year=D("366.67"),
            rank=3,
        ),
        EcosystemSink(
            ecosystem="lost",
            area_ha=D("0.0000"),
            share=D("0.0000"),
            coefficient=D(2),
            coefficient_unit="t_c",
            sink_t_c_per_year=D("-3.000"),
            sink_t_co2e_per_year=D("-11.000"),
            sink_t_co2e_period=D("-22.000"),
            value_cny_per_year=D("-110.00"),
            rank=4,
        ),
    ]
    totals = result.totals
    assert totals.area_ha == D("11.0000")
    assert totals.sink_t_c_per_year == D("27.000")
    assert totals.sink_t_co2e_per_year == D("99.000")
    assert totals.sink_t_co2e_period == D("198.000")
    assert totals.value_cny_per_year == D("990.00")
    assert totals.value_cny_period == D("1980.00")


def test_stock_change_refuses_a_period_of_no_years():
    with pytest.raises(CalculationError) as raised:
        estimate(years=D(0))
    assert raised.value.code == "period"
    assert str(raised.value) == "the monitoring period must be positive"
    assert estimate(years=D("0.5")).totals.sink_t_co2e_period == D("198.000")


def test_stock_change_refuses_a_negative_price_but_not_a_free_one():
    with pytest.raises(CalculationError) as raised:
        estimate(price_cny_per_t_co2e=D("-0.01"))
    assert raised.value.code == "price"
    assert str(raised.value) == "the carbon price cannot be negative"
    free = estimate(price_cny_per_t_co2e=D(0))
    assert free.totals.value_cny_period == D("0.00")
    assert estimate(price_cny_per_t_co2e=None).totals.value_cny_period is None


def test_stock_change_refuses_an_ecosystem_without_pools():
    with pytest.raises(CalculationError) as raised:
        estimate(alternate_ha={"wetland": D(1)})
    assert raised.value.code == "pools"
    assert str(raised.value) == "no carbon pools for wetland"


def test_stock_difference_sums_every_class_and_gives_co2e():
    change = stock_difference(
        baseline_ha={"forest": D(1), "grass": D(2)},
        alternate_ha={"forest": D(3), "grass": D(2)},
        pools_by_class=POOLS,
    )
    assert change.baseline_t_c == D(20)
    assert change.alternate_t_c == D(40)
    assert change.change_t_co2e.quantize(D("0.001")) == D("73.333")
    assert change.npv is None


def test_stock_difference_names_the_class_without_pools():
    with pytest.raises(CalculationError) as raised:
        stock_difference(
            baseline_ha={"wetland": D(1)}, alternate_ha={}, pools_by_class=POOLS
        )
    assert str(raised.value) == "no carbon pools for class wetland"


def test_an_estimate_over_empty_maps_is_zero_in_decimals():
    result = estimate(baseline_ha={}, alternate_ha={})
    assert result.ecosystems == []
    assert isinstance(result.totals.area_ha, D)
    assert result.totals.area_ha == 0
    assert isinstance(result.totals.sink_t_co2e_period, D)
    assert result.totals.sink_t_co2e_period == 0
    assert result.totals.value_cny_period == 0


def test_an_alternate_map_without_area_gives_every_share_zero():
    # Everything that stood in the baseline is gone: no area left to share.
    result = estimate(alternate_ha={}, baseline_ha={"forest": D(2), "grass": D(1)})
    assert [row.share for row in result.ecosystems] == [D(0), D(0)]
    assert all(isinstance(row.share, D) for row in result.ecosystems)
    # ... and the losses are still counted: -(2 x 10 + 1 x 5) t C
    assert result.totals.sink_t_c_per_year == D("-12.5")


def test_t_c_per_hectare_divides_a_co2e_coefficient_by_44_over_12():
    from estimation.calculations import CO2_PER_C, Coefficient

    per_co2e = Coefficient(value=D("3.67"), unit="t_co2")
    assert per_co2e.t_c_per_ha_year() == D("3.67") / CO2_PER_C
    per_c = Coefficient(value=D("2"), unit="t_c")
    assert per_c.t_c_per_ha_year() == D("2")
    emitting = Coefficient(value=D("2"), unit="t_c", sign="emission_positive")
    assert emitting.t_c_per_ha_year() == D("-2")


def test_storage_is_the_sum_of_the_four_pools():
    from estimation.calculations import pool_storage_t_c_per_ha

    pools = {"above": D("1.5"), "below": D("0.25"), "soil": D("3"), "dead": D("0.125")}
    assert pool_storage_t_c_per_ha(pools) == D("4.875")
    zero = {"above": D(0), "below": D(0), "soil": D(0), "dead": D(0)}
    assert isinstance(pool_storage_t_c_per_ha(zero), D)


def test_storage_names_every_missing_pool():
    from estimation.calculations import pool_storage_t_c_per_ha

    with pytest.raises(CalculationError) as raised:
        pool_storage_t_c_per_ha({"above": D(1), "soil": D(2)})
    assert raised.value.code == "pools"
    assert str(raised.value) == "missing carbon pools: below, dead"


# Refusals say which input is at fault, with a stable code --------------------------


def refusal(call, *args, **kwargs):
    with pytest.raises(CalculationError) as raised:
        call(*args, **kwargs)
    return raised.value.code, str(raised.value)


def test_decimal_from_names_the_input_and_the_kind_of_refusal():
    # decimal_from 2, 10, 11, 14, 15, 17, 18, 21, 22
    assert refusal(decimal_from, 0.5, name="price") == (
        "float",
        "price must be given as a Decimal or string",
    )
    assert refusal(decimal_from, "abc", name="price") == (
        "not_a_number",
        "price is not a number",
    )
    for infinite in ("NaN", "-Infinity"):
        assert refusal(decimal_from, infinite, name="price") == (
            "not_a_number",
            "price is not a finite number",
        )
    assert decimal_from(" 12.50 ", name="price") == D("12.50")


def test_share_from_names_the_share_it_refuses():
    # share_from 3, 12
    assert refusal(share_from, "abc", name="buffer share") == (
        "not_a_number",
        "buffer share is not a number",
    )
    assert refusal(share_from, "1", name="buffer share") == (
        "share",
        "buffer share must be at least 0 and below 1",
    )
    assert refusal(share_from, "-0.0001", name="buffer share")[0] == "share"
    assert share_from("0", name="buffer share") == 0
    assert share_from("0.9999", name="buffer share") == D("0.9999")


def test_flux_method_refuses_a_period_of_no_years_and_a_negative_price():
    # flux_sink 3, 4, 7-10, 15, 16, 19-22
    assert refusal(flux_sink, {"forest": D(1)}, {}, years=D(0)) == (
        "period",
        "the monitoring period must be positive",
    )
    assert refusal(flux_sink, {}, {}, years=D(-1))[0] == "period"
    assert refusal(
        flux_sink, {"forest": D(1)}, {}, years=D(1), price_cny_per_t_co2e=D("-0.01")
    ) == ("price", "the carbon price cannot be negative")


def test_flux_method_values_a_free_and_a_cheap_price():
    # A price of 0 or below 1 CNY is a price, not a refusal: flux_sink 13, 14.
    coefficients = {"forest": Coefficient(D(3), "t_co2")}
    free = flux_sink(
        {"forest": D(2)}, coefficients, years=D(1), price_cny_per_t_co2e=D(0)
    )
    assert free.totals.value_cny_per_year == D("0.00")
    assert free.ecosystems[0].value_cny_per_year == D("0.00")
    cheap = flux_sink(
        {"forest": D(2)}, coefficients, years=D(1), price_cny_per_t_co2e=D("0.5")
    )
    assert cheap.ecosystems[0].value_cny_per_year == D("3.00")
    assert cheap.totals.value_cny_per_year == D("3.00")


def test_period_years_refuses_a_period_that_ends_before_it_starts():
    # period_years 2, 6-8; a single day is the shortest period (1/366 in 2024).
    assert refusal(period_years, date(2024, 1, 2), date(2024, 1, 1)) == (
        "period",
        "the period ends before it starts",
    )
    assert period_years(date(2024, 1, 1), date(2024, 1, 1)) == D("0.0027")


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (
            {"uncertainty_deduction": D(1)},
            "share",
            "uncertainty deduction must be at least 0 and below 1",
        ),
        (
            {"uncertainty_deduction": "ten"},
            "not_a_number",
            "uncertainty deduction is not a number",
        ),
        (
            {"buffer_share": D(1)},
            "share",
            "buffer share must be at least 0 and below 1",
        ),
        ({"period_t_co2e": "lots"}, "not_a_number", "estimate is not a number"),
        ({"estimate_years": "five"}, "not_a_number", "estimate years is not a number"),
        (
            {"monitoring_years": "NaN"},
            "not_a_number",
            "monitoring years is not a finite number",
        ),
        # An estimate over no years: refused as such, not as "longer than".
        ({"estimate_years": D(0)}, "period", "the periods must be positive"),
        ({"monitoring_years": D(0)}, "period", "the periods must be positive"),
        (
            {"monitoring_years": D("5.0001")},
            "period",
            "the monitoring period is longer than the estimate's",
        ),
    ],
)
def test_issuance_names_the_input_it_refuses(arguments, code, message):
    # issuance_quantities 3, 6, 7, 10, 13, 14, 17, 20, 21, 24, 27, 28, 31, 34,
    # 35, 37, 42, 47, 48, 51, 56, 57
    valid = {
        "period_t_co2e": D(100),
        "estimate_years": D(5),
        "monitoring_years": D(1),
        "uncertainty_deduction": D("0.1"),
        "buffer_share": D("0.1"),
    }
    assert refusal(issuance_quantities, **(valid | arguments)) == (code, message)


# What an estimate carries through unchanged ---------------------------------------


def test_stock_change_reports_its_price_and_the_unmapped_codes_to_the_hectare():
    # stock_change_estimate 157, 163, 203-206
    result = estimate(unmapped_codes_ha={"99": D("0.123456"), "98": D("2.00005")})
    assert result.price_cny_per_t_co2e == D(10)
    assert result.years == D(2)
    assert result.unmapped_codes_ha == {"99": D("0.1235"), "98": D("2.0001")}
    assert estimate().unmapped_codes_ha == {}


# The coefficient method, the issuance arithmetic and the period's length ---------


def sink_row(
    ecosystem, area, share, coefficient, unit, t_c, t_co2e, period, value, rank
):
    return EcosystemSink(
        ecosystem=ecosystem,
        area_ha=D(area),
        share=D(share),
        coefficient=None if coefficient is None else D(coefficient),
        coefficient_unit=unit,
        sink_t_c_per_year=D(t_c),
        sink_t_co2e_per_year=D(t_co2e),
        sink_t_co2e_period=D(period),
        value_cny_per_year=D(value),
        rank=rank,
    )


def test_flux_method_table_ranks_by_sink_then_area_then_name():
    """Area x coefficient (t C x 44/12, t CO2 as is, emissions negated); an
    ecosystem without a coefficient keeps its area and sinks nothing (flux_sink
    35-37); ties rank by the larger area, then by name."""
    result = flux_sink(
        {
            "water": D("1.5"),
            "ice": D("0.5"),
            "paddy": D(1),
            "bare": D("1.5"),
            "forest": D(3),
            "grass": D("1.5"),
        },
        {
            "forest": Coefficient(D(2), "t_c"),
            "grass": Coefficient(D(1), "t_co2"),
            "paddy": Coefficient(D(1), "t_c", sign="emission_positive"),
        },
        years=D("2.5"),
        price_cny_per_t_co2e=D("0.5"),
        unmapped_codes_ha={"99": D("0.123456")},
    )
    assert result.ecosystems == [
        # 3 ha x 2 t C = 6 t C = 22 t CO2e a year, 55 over 2.5 years, 11 CNY.
        sink_row(
            "forest",
            "3.0000",
            "0.3333",
            2,
            "t_c",
            "6.000",
            "22.000",
            "55.000",
            "11.00",
            1,
        ),
        # 1.5 ha x 1 t CO2 = 1.5 t CO2e = 0.409 t C.
        sink_row(
            "grass",
            "1.5000",
            "0.1667",
            1,
            "t_co2",
            "0.409",
            "1.500",
            "3.750",
            "0.75",
            2,
        ),
        sink_row(
            "bare", "1.5000", "0.1667", None, "", "0.000", "0.000", "0.000", "0.00", 3
        ),
        sink_row(
            "water", "1.5000", "0.1667", None, "", "0.000", "0.000", "0.000", "0.00", 4
        ),
        sink_row(
            "ice", "0.5000", "0.0556", None, "", "0.000", "0.000", "0.000", "0.00", 5
        ),
        # Emits 1 t C/ha: -3.667 t CO2e a year, -1.83 CNY (half up from -1.8333).
        sink_row(
            "paddy",
            "1.0000",
            "0.1111",
            1,
            "t_c",
            "-1.000",
            "-3.667",
            "-9.167",
            "-1.83",
            6,
        ),
    ]
    totals = result.totals
    assert totals.area_ha == D("9.0000")
    assert totals.sink_t_c_per_year == D("5.409")
    assert totals.sink_t_co2e_per_year == D("19.833")
    assert totals.sink_t_co2e_period == D("49.583")
    # Value is rounded once, at the end: 19.8333 x 0.5 = 9.9167 a year, and
    # 9.9167 x 2.5 = 24.79 (not 9.92 x 2.5 = 24.80).
    assert totals.value_cny_per_year == D("9.92")
    assert totals.value_cny_period == D("24.79")
    assert result.years == D("2.5")
    assert result.price_cny_per_t_co2e == D("0.5")
    assert result.unmapped_codes_ha == {"99": D("0.1235")}


def test_flux_method_over_part_of_a_year_without_a_price():
    result = flux_sink(
        {"forest": D(3)}, {"forest": Coefficient(D(2), "t_c")}, years=D("0.5")
    )
    (forest,) = result.ecosystems
    assert (forest.share, forest.sink_t_co2e_per_year, forest.sink_t_co2e_period) == (
        D("1.0000"),
        D("22.000"),
        D("11.000"),
    )
    assert forest.value_cny_per_year is None
    assert result.totals.value_cny_per_year is None
    assert result.totals.value_cny_period is None
    assert result.price_cny_per_t_co2e is None
    assert result.unmapped_codes_ha == {}


def test_flux_method_over_no_area_shares_nothing():
    result = flux_sink(
        {"forest": D(0)}, {"forest": Coefficient(D(2), "t_c")}, years=D(1)
    )
    assert result.ecosystems[0].share == D(0)
    assert result.totals.area_ha == D("0.0000")
    assert result.totals.sink_t_co2e_per_year == D("0.000")


def issue(**arguments):
    return issuance_quantities(
        **{
            "period_t_co2e": D(1000),
            "estimate_years": D(3),
            "monitoring_years": D(1),
            "uncertainty_deduction": D("0.15"),
            "buffer_share": D("0.2"),
        }
        | arguments
    )


def test_issuance_takes_the_annual_rate_deducts_then_floors_twice():
    # 1000 t over 3 years, 1 year monitored: 333.333; x 0.85 = 283.333 -> 283;
    # buffer 283 x 0.2 = 56.6 -> 56; the owner holds 227.
    result = issue()
    assert result.gross_t_co2e == D("333.333")
    assert result.net_t_co2e == D("283.333")
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        283,
        56,
        227,
    )


def test_issuance_shows_tonnes_to_the_kilogram_half_up():
    # 100.001 x 0.5 = 50.0005 t shown as 50.001; 50 x 0.33 = 16.5 -> 16 withheld.
    result = issue(
        period_t_co2e=D("100.001"),
        estimate_years=D(1),
        monitoring_years=D(1),
        uncertainty_deduction=D("0.5"),
        buffer_share=D("0.33"),
    )
    assert (result.gross_t_co2e, result.net_t_co2e) == (D("100.001"), D("50.001"))
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        50,
        16,
        34,
    )


def test_issuance_over_periods_shorter_than_a_year():
    # A half-year estimate, a quarter monitored: half of it.
    result = issue(
        period_t_co2e=D(200),
        estimate_years=D("0.5"),
        monitoring_years=D("0.25"),
        uncertainty_deduction=D(0),
        buffer_share=D("0.5"),
    )
    assert result.gross_t_co2e == D("100.000")
    assert (result.quantity, result.buffer_quantity, result.holder_quantity) == (
        100,
        50,
        50,
    )


def test_issuance_accepts_a_monitoring_period_as_long_as_the_estimate():
    result = issue(estimate_years=D("2.5"), monitoring_years=D("2.5"))
    assert result.gross_t_co2e == D("1000.000")
    assert result.quantity == 850


@pytest.mark.parametrize(
    ("start", "end", "years"),
    [
        # 275 days of the 366 from 2023-07-01 to the next anniversary.
        (date(2023, 7, 1), date(2024, 3, 31), D("0.7514")),
        (date(2020, 7, 1), date(2024, 3, 31), D("3.7514")),
        # 274 days of 365.
        (date(2021, 7, 1), date(2022, 3, 31), D("0.7507")),
        # A 29 February start has its anniversary on 28 February in a common
        # year: 32 days past it, of 365.
        (date(2020, 2, 29), date(2021, 3, 31), D("1.0877")),
        (date(2020, 2, 29), date(2023, 2, 27), D(3)),
        (date(2020, 2, 29), date(2024, 2, 28), D(4)),
        (date(2021, 3, 1), date(2024, 2, 29), D(3)),
    ],
)
def test_period_years_counts_whole_years_by_anniversary_and_the_rest_by_the_next_year(
    start, end, years
):
    # period_years 21-23
    assert period_years(start, end) == years


def test_a_class_code_maps_as_itself_then_without_a_suffix_then_by_its_first_level():
    mapping = {"0201K": "orchard", "0201": "forest", "03": "shrub", "7": "water"}
    assert ecosystem_of("0201K", mapping) == "orchard"
    assert ecosystem_of(" 0201 ", mapping) == "forest"
    assert ecosystem_of("0201A", mapping) == "forest"
    assert ecosystem_of("0307", mapping) == "shrub"
    assert ecosystem_of("0307K", mapping) == "shrub"
    assert ecosystem_of("7", mapping) == "water"
    # Only a four-digit code has a first-level class.
    assert ecosystem_of("030", mapping) is None
    assert ecosystem_of("03071", mapping) is None
    assert ecosystem_of("04", mapping) is None
