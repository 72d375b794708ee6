"""common/quantities.py: the one home of hectares, money, prices, whole tonnes
and shares, and the one rounding rule (half up)."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import quantities
from common.errors import DomainError, checked, quantity_message, quantity_refusal
from common.quantities import QuantityError

CENTS = st.integers(min_value=0, max_value=10**11)
PERCENTS = st.decimals(
    min_value=0, max_value=D("99.99"), places=2, allow_nan=False, allow_infinity=False
)


def test_hectares_are_exact_and_floats_enter_by_their_shortest_text():
    assert quantities.hectares(10_000) == D(1)
    assert quantities.hectares(0.1) == D("0.00001")  # not 0.0000100000000000000005551
    assert quantities.hectares(D("12345.6789")) == D("1.23456789")


def test_areas_round_half_up_to_a_square_metre():
    assert quantities.area_ha(0.5) == D("0.0001")  # 0.00005 ha: half up, not to even
    assert quantities.area_ha(1.5) == D("0.0002")
    assert quantities.area_ha(0.49) == D("0.0000")
    assert quantities.area_ha(0.5).as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("value", "expected"),
    [("95.705", "95.71"), ("95.715", "95.72"), ("2.675", "2.68"), ("-1.005", "-1.01")],
)
def test_money_rounds_half_up_to_the_fen(value, expected):
    assert quantities.money(D(value)) == D(expected)
    assert quantities.money(D(value)).as_tuple().exponent == -2


@given(CENTS)
def test_money_rounds_every_half_fen_up_and_keeps_whole_fen(cents):
    fen = D(cents).scaleb(-2)
    assert quantities.money(fen) == fen
    assert quantities.money(fen + D("0.005")) == fen + D("0.01")
    assert quantities.money(fen + D("0.0049999")) == fen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("95.70", "95.70"),
        ("95.7", "95.70"),
        (" 95 ", "95.00"),
        ("95.700", "95.70"),
        (95.7, "95.70"),
        (D("0"), "0.00"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_prices_are_read_to_the_fen(value, expected):
    price = quantities.parse_price(value)
    assert price == D(expected)
    assert str(price) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("95.705", "price_places"),
        ("0.001", "price_places"),
        (95.705, "price_places"),
        ("-1", "negative"),
        ("-0.01", "negative"),
        ("abc", "not_a_number"),
        ("", "not_a_number"),
        ("NaN", "not_a_number"),
        ("Infinity", "not_a_number"),
        (True, "not_a_number"),
        ("10000000000", "too_large"),
        # Huge exponents: refused as too large, not an overflow (a 500).
        ("1e999", "too_large"),
        ("1.5e50", "too_large"),
    ],
)
def test_prices_with_more_places_than_the_currency_are_refused_not_rounded(value, code):
    with pytest.raises(QuantityError) as raised:
        quantities.parse_price(value)
    assert (raised.value.kind, raised.value.code) == ("price", code)


def test_the_places_refusal_says_how_many_places_the_currency_has():
    with pytest.raises(QuantityError) as raised:
        quantities.parse_price("95.705", "CNY")
    assert raised.value.places == 2
    assert "2 decimal places" in quantity_message(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", 10), (10.0, 10), (" 7 ", 7), ("1e3", 1000), (D(1), 1)],
)
def test_whole_tonnes(value, expected):
    assert quantities.whole_tonnes(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2.5", "fractional"),
        ("0", "not_positive"),
        ("-3", "not_positive"),
        (quantities.MAX_TONNES + 1, "too_large"),
        ("ten", "not_a_number"),
        (False, "not_a_number"),
        ("inf", "not_a_number"),
    ],
)
def test_whole_tonnes_refusals(value, code):
    with pytest.raises(QuantityError) as raised:
        quantities.whole_tonnes(value)
    assert (raised.value.kind, raised.value.code) == ("tonnes", code)


def test_the_largest_quantity_is_accepted():
    assert quantities.whole_tonnes(quantities.MAX_TONNES) == quantities.MAX_TONNES


@pytest.mark.parametrize(
    ("value", "expected"), [(D("383.999"), 383), (D("1"), 1), (D(0), 0), (D("-2.5"), 0)]
)
def test_credits_are_floored(value, expected):
    assert quantities.floor_tonnes(value) == expected


@given(PERCENTS)
def test_percent_to_share_and_back_is_exact(percent):
    share = quantities.share_from_percent(percent)
    assert share * 100 == percent
    assert quantities.percent_from_share(share) == percent
    assert quantities.within_places(share, quantities.SHARE_PLACES)


def test_shares_and_percentages():
    assert quantities.share_from_percent(D("12.5")) == D("0.125")
    assert quantities.share_from_percent("10") == D("0.1")
    assert f"{quantities.percent_from_share(D('0.1000')):f}" == "10"
    assert f"{quantities.percent_from_share(D('1')):f}" == "100"


def test_within_places():
    assert quantities.within_places(D("0.1200"), D("0.01"))
    assert not quantities.within_places(D("0.125"), D("0.01"))


def test_a_quantity_refusal_is_a_domain_error_on_its_field_with_its_code():
    with pytest.raises(DomainError) as raised:
        checked(quantities.parse_price, "95.705", field="price_per_tonne")
    assert raised.value.code == "price_places"
    [item] = raised.value.error_dict["price_per_tonne"]
    assert item.code == "price_places"
    assert "at most 2 decimal places" in item.message
    assert checked(quantities.whole_tonnes, "12", field="quantity") == 12
    refusal = quantity_refusal(QuantityError("tonnes", "fractional"), field="quantity")
    assert refusal.message_dict == {
        "quantity": ["Credits are whole tonnes: enter a whole number."]
    }


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("4750", None),
        ("4750.005", "price_places"),
        ("0", "not_positive"),
        ("-3", "not_positive"),
        ("abc", "not_a_number"),
        ("1e999", "too_large"),
        ("1" + "0" * 22, "too_large"),
    ],
)
def test_amounts_received(value, code):
    if code is None:
        assert quantities.parse_amount(value) == quantities.money(value)
        return
    with pytest.raises(QuantityError) as raised:
        quantities.parse_amount(value)
    assert (raised.value.kind, raised.value.code) == ("amount", code)
