"""Pure arithmetic behind the public registry's figures: no Django, Decimal
money, whole-tonne credits."""

import re
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from common.quantities import SHARE_PLACES, money, rounded

CERTIFICATE_NUMBER = re.compile(r"^BJ-RC-\d{4}-\d{6,}$")
CERTIFICATE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


def is_certificate_number(text: str) -> bool:
    return bool(CERTIFICATE_NUMBER.match((text or "").strip().upper()))


def is_certificate_token(text: str) -> bool:
    return bool(CERTIFICATE_TOKEN.match(text or ""))


def volume_and_average_price(
    rows: Iterable[tuple[object, Decimal, int]],
) -> list[tuple[object, int, Decimal]]:
    """(key, price, tonnes) rows -> (key, tonnes, volume-weighted average price)
    per key, in key order. Prices are per tonne; the average is rounded to cents."""
    tonnes: dict = defaultdict(int)
    value: dict = defaultdict(Decimal)
    for key, price, quantity in rows:
        tonnes[key] += quantity
        value[key] += Decimal(price) * quantity
    return [
        (
            key,
            tonnes[key],
            money(value[key] / tonnes[key]) if tonnes[key] else Decimal("0.00"),
        )
        for key in sorted(tonnes)
    ]


def recent_months(year: int, month: int, count: int) -> list[tuple[int, int]]:
    """The ``count`` calendar months up to and including ``year``-``month``,
    oldest first, as (year, month): the market's chart of the last 12."""
    last = year * 12 + (month - 1)
    months = []
    for index in range(last - count + 1, last + 1):
        months.append((index // 12, index % 12 + 1))
    return months


def rank_by_total(
    rows: Iterable[tuple[str, Decimal, Decimal]],
) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """(ecosystem, area ha, sink t CO2e/yr) rows of many projects -> per
    ecosystem (ecosystem, area, sink, share of the total sink), largest sink
    first: the study's ranking."""
    area: dict = defaultdict(Decimal)
    sink: dict = defaultdict(Decimal)
    for ecosystem, area_ha, sink_t in rows:
        area[ecosystem] += Decimal(area_ha)
        sink[ecosystem] += Decimal(sink_t)
    total = sum(sink.values(), Decimal(0))
    ranked = sorted(sink, key=lambda ecosystem: (-sink[ecosystem], ecosystem))
    return [
        (
            ecosystem,
            area[ecosystem],
            sink[ecosystem],
            rounded(sink[ecosystem] / total if total else Decimal(0), SHARE_PLACES),
        )
        for ecosystem in ranked
    ]
