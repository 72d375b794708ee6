"""Rules of the carbon arithmetic that the mutation run (make mutation) found
untested: the refusals of the stock-difference method and of InVEST's
valuation constant, the ranking of ecosystems, and CO2e from a stock change."""

from decimal import Decimal as D

import pytest

from estimation.calculations import (
    CalculationError,
    EcosystemSink,
    invest_valuation_constant,
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
