from decimal import Decimal

import pytest

from public import figures
from trading import serials


@pytest.mark.parametrize(
    ("text", "serial"),
    [
        ("4210", 4210),
        (" 4,210 ", 4210),
        ("0000004210", 4210),
        ("4_210", 4210),
        ("", None),
        ("0", None),
        ("-1", None),
        ("1.5", None),
        ("12a", None),
        ("1" * 19, None),
        ("١٢٣", None),
    ],
)
def test_parse_serial(text, serial):
    assert serials.parse_serial(text) == serial


def test_certificate_number_and_token_shapes():
    assert figures.is_certificate_number("bj-rc-2026-000123")
    assert not figures.is_certificate_number("BJ-RC-26-1")
    assert figures.is_certificate_token("6D5QwjRFDalbQy4P6muoow")
    assert not figures.is_certificate_token("../../etc/passwd")
    assert not figures.is_certificate_token("a" * 33)


def test_volume_weighted_average_price_in_decimal():
    rows = [
        ("2026-01", Decimal("80.00"), 100),
        ("2026-01", Decimal("100.00"), 300),
        ("2025-12", Decimal("33.33"), 3),
    ]
    assert figures.volume_and_average_price(rows) == [
        ("2025-12", 3, Decimal("33.33")),
        ("2026-01", 400, Decimal("95.00")),
    ]


def test_rank_by_total_shares():
    ranked = figures.rank_by_total(
        [("farmland", Decimal(2), Decimal(1)), ("forest", Decimal(3), Decimal(3))]
    )
    assert ranked == [
        ("forest", Decimal(3), Decimal(3), Decimal("0.7500")),
        ("farmland", Decimal(2), Decimal(1), Decimal("0.2500")),
    ]
    assert figures.rank_by_total([]) == []
