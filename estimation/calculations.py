"""Carbon-sink arithmetic: pure Python and Decimal, no Django.

Coefficient (flux) method of the Bijie study: sink_i = area_i x coefficient_i,
in t C or t CO2e per year; CO2e = C x 44/12; value = t CO2e x price (CNY).
Stock-difference method as InVEST's carbon model: storage = sum of four pools
(above, below, soil, dead) x area per map; sequestration = alternate - baseline;
valuation with InVEST's discount constant. Coefficients are stored "sink
positive"; an emission-positive coefficient is negated on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from common.quantities import (
    AREA_PLACES,
    SHARE_PLACES,
    TONNE_PLACES,
    floor_tonnes,
    money,
    rounded,
    share_from_percent,
)

CO2_PER_C = Decimal(44) / Decimal(12)
POOLS = ("above", "below", "soil", "dead")


class CalculationError(ValueError):
    """Inputs the arithmetic refuses; ``code`` names the problem."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def decimal_from(value: object, *, name: str) -> Decimal:
    """A finite Decimal from a Decimal, int or numeric string (never a float,
    whose binary rounding must not reach a credit or a price)."""
    if isinstance(value, float):
        raise CalculationError("float", f"{name} must be given as a Decimal or string")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError as error:
        raise CalculationError("not_a_number", f"{name} is not a number") from error
    if not number.is_finite():
        raise CalculationError("not_a_number", f"{name} is not a finite number")
    return number


@dataclass(frozen=True)
class Coefficient:
    """Per-hectare sink of one ecosystem: annual flux, sink positive."""

    value: Decimal
    unit: str  # "t_c" or "t_co2"
    sign: str = "sink_positive"  # or "emission_positive"

    def t_co2e_per_ha_year(self) -> Decimal:
        value = self.value if self.sign == "sink_positive" else -self.value
        return value * CO2_PER_C if self.unit == "t_c" else value

    def t_c_per_ha_year(self) -> Decimal:
        return self.t_co2e_per_ha_year() / CO2_PER_C


@dataclass(frozen=True)
class EcosystemSink:
    ecosystem: str
    area_ha: Decimal
    share: Decimal
    coefficient: Decimal | None
    coefficient_unit: str
    sink_t_c_per_year: Decimal
    sink_t_co2e_per_year: Decimal
    sink_t_co2e_period: Decimal
    value_cny_per_year: Decimal | None
    rank: int


@dataclass(frozen=True)
class SinkTotals:
    area_ha: Decimal
    sink_t_c_per_year: Decimal
    sink_t_co2e_per_year: Decimal
    sink_t_co2e_period: Decimal
    value_cny_per_year: Decimal | None
    value_cny_period: Decimal | None


@dataclass(frozen=True)
class SinkEstimate:
    ecosystems: list[EcosystemSink]
    totals: SinkTotals
    years: Decimal
    price_cny_per_t_co2e: Decimal | None
    unmapped_codes_ha: dict[str, Decimal] = field(default_factory=dict)


def ecosystem_of(code: str, mapping: Mapping[str, str]) -> str | None:
    """The ecosystem of a class code: the code itself, else without a trailing
    letter suffix (三调 "0201K"), else its first-level class (the first two
    digits of a four-digit code)."""
    code = code.strip()
    for candidate in (code, code.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")):
        if candidate in mapping:
            return mapping[candidate]
    stem = code.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if len(stem) == 4 and stem.isdigit():
        return mapping.get(stem[:2])
    return None


def map_to_ecosystems(
    area_ha_by_code: Mapping[str, Decimal], mapping: Mapping[str, str]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Sum class areas per ecosystem; codes the scheme does not know are returned
    separately with their area (reported, never dropped)."""
    by_ecosystem: dict[str, Decimal] = {}
    unmapped: dict[str, Decimal] = {}
    for code, area in area_ha_by_code.items():
        ecosystem = ecosystem_of(code, mapping)
        target = unmapped if ecosystem is None else by_ecosystem
        key = code if ecosystem is None else ecosystem
        target[key] = target.get(key, Decimal(0)) + area
    return by_ecosystem, unmapped


def flux_sink(
    area_ha_by_ecosystem: Mapping[str, Decimal],
    coefficients: Mapping[str, Coefficient],
    *,
    years: Decimal,
    price_cny_per_t_co2e: Decimal | None = None,
    unmapped_codes_ha: Mapping[str, Decimal] | None = None,
) -> SinkEstimate:
    """The coefficient method: per ecosystem area x coefficient, ranked by sink.

    An ecosystem without a coefficient contributes area but no sink. ``years`` is
    the monitoring period's length; ``price`` is CNY per t CO2e.
    """
    if years <= 0:
        raise CalculationError("period", "the monitoring period must be positive")
    if price_cny_per_t_co2e is not None and price_cny_per_t_co2e < 0:
        raise CalculationError("price", "the carbon price cannot be negative")
    total_area = sum(area_ha_by_ecosystem.values(), Decimal(0))
    rows = []
    for ecosystem, area in area_ha_by_ecosystem.items():
        coefficient = coefficients.get(ecosystem)
        per_ha = coefficient.t_co2e_per_ha_year() if coefficient else Decimal(0)
        t_co2e = area * per_ha
        rows.append(
            (
                ecosystem,
                area,
                coefficient,
                t_co2e / CO2_PER_C,
                t_co2e,
            )
        )
    # Rank by sink, then by area (the study's ranking), then by name for ties.
    rows.sort(key=lambda row: (-row[4], -row[1], row[0]))
    ecosystems = [
        EcosystemSink(
            ecosystem=ecosystem,
            area_ha=rounded(area, AREA_PLACES),
            share=rounded(area / total_area, SHARE_PLACES)
            if total_area
            else Decimal(0),
            coefficient=coefficient.value if coefficient else None,
            coefficient_unit=coefficient.unit if coefficient else "",
            sink_t_c_per_year=rounded(t_c, TONNE_PLACES),
            sink_t_co2e_per_year=rounded(t_co2e, TONNE_PLACES),
            sink_t_co2e_period=rounded(t_co2e * years, TONNE_PLACES),
            value_cny_per_year=(
                money(t_co2e * price_cny_per_t_co2e)
                if price_cny_per_t_co2e is not None
                else None
            ),
            rank=rank,
        )
        for rank, (ecosystem, area, coefficient, t_c, t_co2e) in enumerate(rows, 1)
    ]
    total_t_co2e = sum((row[4] for row in rows), Decimal(0))
    value_year = (
        total_t_co2e * price_cny_per_t_co2e
        if price_cny_per_t_co2e is not None
        else None
    )
    totals = SinkTotals(
        area_ha=rounded(total_area, AREA_PLACES),
        sink_t_c_per_year=rounded(total_t_co2e / CO2_PER_C, TONNE_PLACES),
        sink_t_co2e_per_year=rounded(total_t_co2e, TONNE_PLACES),
        sink_t_co2e_period=rounded(total_t_co2e * years, TONNE_PLACES),
        value_cny_per_year=money(value_year) if value_year is not None else None,
        value_cny_period=(
            money(value_year * years) if value_year is not None else None
        ),
    )
    return SinkEstimate(
        ecosystems=ecosystems,
        totals=totals,
        years=years,
        price_cny_per_t_co2e=price_cny_per_t_co2e,
        unmapped_codes_ha={
            code: rounded(area, AREA_PLACES)
            for code, area in (unmapped_codes_ha or {}).items()
        },
    )


# InVEST carbon model ------------------------------------------------------------


def invest_valuation_constant(
    *,
    price: Decimal,
    discount_rate_percent: Decimal,
    rate_change_percent: Decimal,
    years: int,
) -> Decimal:
    """InVEST's V x (1/n) x sum_{t=0}^{n-1} 1 / ((1 + r/100)^t (1 + c/100)^t):
    multiplied by a total change in t C it gives its net present value."""
    if years <= 0:
        raise CalculationError("period", "the valuation period must be positive")
    ratio = Decimal(1) / (
        (1 + share_from_percent(discount_rate_percent))
        * (1 + share_from_percent(rate_change_percent))
    )
    if ratio == 1:
        return price
    total = (1 - ratio**years) / (1 - ratio)
    return price * total / years


@dataclass(frozen=True)
class StockChange:
    baseline_t_c: Decimal
    alternate_t_c: Decimal
    change_t_c: Decimal
    change_t_co2e: Decimal
    npv: Decimal | None


def pool_storage_t_c_per_ha(pools: Mapping[str, Decimal]) -> Decimal:
    missing = [pool for pool in POOLS if pool not in pools]
    if missing:
        raise CalculationError("pools", f"missing carbon pools: {', '.join(missing)}")
    return sum((pools[pool] for pool in POOLS), Decimal(0))


def stock_difference(
    *,
    baseline_ha: Mapping[str, Decimal],
    alternate_ha: Mapping[str, Decimal],
    pools_by_class: Mapping[str, Mapping[str, Decimal]],
    valuation: Mapping[str, Decimal | int] | None = None,
) -> StockChange:
    """Storage (t C) of each map = sum over classes of area x (sum of 4 pools);
    change = alternate - baseline (positive: sequestered). With ``valuation``
    (price per t C, discount_rate_percent, rate_change_percent, years) the NPV is
    the change x InVEST's valuation constant."""

    def storage(areas: Mapping[str, Decimal]) -> Decimal:
        total = Decimal(0)
        for cls, area in areas.items():
            if cls not in pools_by_class:
                raise CalculationError("pools", f"no carbon pools for class {cls}")
            total += area * pool_storage_t_c_per_ha(pools_by_class[cls])
        return total

    baseline, alternate = storage(baseline_ha), storage(alternate_ha)
    change = alternate - baseline
    npv = None
    if valuation is not None:
        npv = change * invest_valuation_constant(
            price=Decimal(valuation["price"]),
            discount_rate_percent=Decimal(valuation["discount_rate_percent"]),
            rate_change_percent=Decimal(valuation["rate_change_percent"]),
            years=int(valuation["years"]),
        )
    return StockChange(
        baseline_t_c=baseline,
        alternate_t_c=alternate,
        change_t_c=change,
        change_t_co2e=change * CO2_PER_C,
        npv=npv,
    )


def stock_change_estimate(
    *,
    baseline_ha: Mapping[str, Decimal],
    alternate_ha: Mapping[str, Decimal],
    pools_by_ecosystem: Mapping[str, Mapping[str, Decimal]],
    years: Decimal,
    price_cny_per_t_co2e: Decimal | None = None,
    unmapped_codes_ha: Mapping[str, Decimal] | None = None,
) -> SinkEstimate:
    """The stock-difference method in the shape of the coefficient method's
    table: per ecosystem, (alternate area - baseline area) x its storage
    (sum of the four pools, t C/ha) over the period, and per year.

    Summed over ecosystems this is InVEST's sequestration (alternate storage -
    baseline storage); the "coefficient" shown is the storage per hectare.
    """
    if years <= 0:
        raise CalculationError("period", "the monitoring period must be positive")
    if price_cny_per_t_co2e is not None and price_cny_per_t_co2e < 0:
        raise CalculationError("price", "the carbon price cannot be negative")
    rows = []
    for ecosystem in sorted(set(baseline_ha) | set(alternate_ha)):
        if ecosystem not in pools_by_ecosystem:
            raise CalculationError("pools", f"no carbon pools for {ecosystem}")
        storage = pool_storage_t_c_per_ha(pools_by_ecosystem[ecosystem])
        change_t_c = (
            alternate_ha.get(ecosystem, Decimal(0))
            - baseline_ha.get(ecosystem, Decimal(0))
        ) * storage
        rows.append(
            (ecosystem, alternate_ha.get(ecosystem, Decimal(0)), storage, change_t_c)
        )
    rows.sort(key=lambda row: (-row[3], -row[1], row[0]))
    total_area = sum((row[1] for row in rows), Decimal(0))
    ecosystems = []
    for rank, (ecosystem, area, storage, change_t_c) in enumerate(rows, 1):
        per_year_t_co2e = change_t_c * CO2_PER_C / years
        ecosystems.append(
            EcosystemSink(
                ecosystem=ecosystem,
                area_ha=rounded(area, AREA_PLACES),
                share=rounded(area / total_area, SHARE_PLACES)
                if total_area
                else Decimal(0),
                coefficient=storage,
                coefficient_unit="t_c",
                sink_t_c_per_year=rounded(change_t_c / years, TONNE_PLACES),
                sink_t_co2e_per_year=rounded(per_year_t_co2e, TONNE_PLACES),
                sink_t_co2e_period=rounded(change_t_c * CO2_PER_C, TONNE_PLACES),
                value_cny_per_year=(
                    money(per_year_t_co2e * price_cny_per_t_co2e)
                    if price_cny_per_t_co2e is not None
                    else None
                ),
                rank=rank,
            )
        )
    change = sum((row[3] for row in rows), Decimal(0))
    per_year = change * CO2_PER_C / years
    value_year = (
        per_year * price_cny_per_t_co2e if price_cny_per_t_co2e is not None else None
    )
    return SinkEstimate(
        ecosystems=ecosystems,
        totals=SinkTotals(
            area_ha=rounded(total_area, AREA_PLACES),
            sink_t_c_per_year=rounded(change / years, TONNE_PLACES),
            sink_t_co2e_per_year=rounded(per_year, TONNE_PLACES),
            sink_t_co2e_period=rounded(change * CO2_PER_C, TONNE_PLACES),
            value_cny_per_year=(money(value_year) if value_year is not None else None),
            value_cny_period=(
                money(value_year * years) if value_year is not None else None
            ),
        ),
        years=years,
        price_cny_per_t_co2e=price_cny_per_t_co2e,
        unmapped_codes_ha={
            code: rounded(area, AREA_PLACES)
            for code, area in (unmapped_codes_ha or {}).items()
        },
    )


def issuable_credits(t_co2e: Decimal) -> int:
    """Whole tonnes of CO2e that may be issued: always rounded down."""
    return floor_tonnes(t_co2e)


def period_years(start: date, end: date) -> Decimal:
    """Length of the period from ``start`` to ``end`` inclusive, in years: whole
    years by anniversary, the rest as a fraction of the following year, so
    2021-01-01..2021-12-31 is exactly 1 and 2021-01-01..2021-06-30 is 181/365."""
    if end < start:
        raise CalculationError("period", "the period ends before it starts")
    after_end = end + timedelta(days=1)
    whole = after_end.year - start.year
    if _anniversary(start, whole) > after_end:
        whole -= 1
    anniversary = _anniversary(start, whole)
    next_anniversary = _anniversary(start, whole + 1)
    fraction = Decimal((after_end - anniversary).days) / Decimal(
        (next_anniversary - anniversary).days
    )
    return rounded(whole + fraction, SHARE_PLACES)


def _anniversary(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February in a common year
        return start.replace(year=start.year + years, day=28)


# Issuance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuance:
    """What a verified estimate turns into, in t CO2e."""

    gross_t_co2e: Decimal  # the estimate over the monitoring period
    net_t_co2e: Decimal  # after the uncertainty deduction
    quantity: int  # whole tonnes issued: one serial each
    buffer_quantity: int  # of which withheld in the buffer pool
    holder_quantity: int  # of which delivered to the project owner


def share_from(value: object, *, name: str) -> Decimal:
    """A share in [0, 1) (0 % up to but excluding 100 %): a share of 1 would
    leave nothing to issue or to hold."""
    share = decimal_from(value, name=name)
    if not 0 <= share < 1:
        raise CalculationError("share", f"{name} must be at least 0 and below 1")
    return share


def issuance_quantities(
    *,
    period_t_co2e: Decimal,
    estimate_years: Decimal,
    monitoring_years: Decimal,
    uncertainty_deduction: object,
    buffer_share: object,
) -> Issuance:
    """Credits for a monitoring period from an estimate over ``estimate_years``.

    gross = period_t_co2e x monitoring_years / estimate_years (the estimate's
    annual rate over the monitoring period; exactly the estimate when the two
    periods agree); quantity = floor(gross x (1 - uncertainty deduction));
    buffer = floor(quantity x buffer share); holder = quantity - buffer.

    Both roundings are down: no tonne is issued that the estimate does not
    support, and no more than the stated share is withheld.
    """
    uncertainty = share_from(uncertainty_deduction, name="uncertainty deduction")
    share = share_from(buffer_share, name="buffer share")
    period_t_co2e = decimal_from(period_t_co2e, name="estimate")
    estimate_years = decimal_from(estimate_years, name="estimate years")
    monitoring_years = decimal_from(monitoring_years, name="monitoring years")
    if estimate_years <= 0 or monitoring_years <= 0:
        raise CalculationError("period", "the periods must be positive")
    if monitoring_years > estimate_years:
        raise CalculationError(
            "period", "the monitoring period is longer than the estimate's"
        )
    gross = period_t_co2e * monitoring_years / estimate_years
    net = gross * (1 - uncertainty)
    quantity = issuable_credits(net)
    buffer = floor_tonnes(quantity * share)
    return Issuance(
        gross_t_co2e=rounded(gross, TONNE_PLACES),
        net_t_co2e=rounded(net, TONNE_PLACES),
        quantity=quantity,
        buffer_quantity=buffer,
        holder_quantity=quantity - buffer,
    )
