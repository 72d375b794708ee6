"""Quantities and money, single-sourced: pure Python and Decimal, no Django.

One rounding rule: whatever is rounded to a fixed number of places (money,
hectares, tonnes, shares) is rounded half up (ROUND_HALF_UP, 四舍五入, the
rule of Chinese accounting). Credits are whole tonnes and are never rounded up:
``floor_tonnes`` rounds down. Floats enter only through ``hectares`` (the area
engines measure in float square metres) and as their shortest decimal text,
never as their binary expansion.

Refusals raise ``QuantityError`` with a stable ``code`` and the ``kind`` of
quantity; the translated message is Django's business, not this module's
(``common.errors.quantity_refusal`` and ``common.errors.checked``), so web
forms, the API and the services all answer the same refusal the same way.
"""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

ROUNDING = ROUND_HALF_UP
M2_PER_HA = Decimal(10_000)
AREA_PLACES = Decimal("0.0001")  # ha
TONNE_PLACES = Decimal("0.001")  # t
SHARE_PLACES = Decimal("0.0001")  # a share of 1; 0.01 %
WHOLE = Decimal(1)  # whole units, e.g. tonnes on a chart
# The smallest unit of each currency the registry trades in (fen for CNY).
CURRENCY_PLACES = {"CNY": 2}
MAX_TONNES = 10**12  # t CO2e; far above any real batch, below bigint
# Prices are stored as numeric(12, 2): below 10^10 per tonne.
MAX_PRICE_DIGITS = 12


class QuantityError(ValueError):
    """Input a quantity refuses. ``kind`` is the quantity ("tonnes",
    "price"), ``code`` the problem; ``places`` the most decimals allowed."""

    def __init__(self, kind: str, code: str, *, places: int | None = None):
        super().__init__(f"{kind}: {code}")
        self.kind = kind
        self.code = code
        self.places = places


def _decimal(value: object, kind: str) -> Decimal:
    """A finite Decimal from user input (text, int, Decimal; a float by its
    shortest text, as JSON numbers arrive)."""
    if isinstance(value, bool):
        raise QuantityError(kind, "not_a_number")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise QuantityError(kind, "not_a_number") from None
    if not number.is_finite():
        raise QuantityError(kind, "not_a_number")
    return number


def rounded(value: Decimal, places: Decimal) -> Decimal:
    """``value`` to ``places`` (e.g. AREA_PLACES), by the one rounding rule."""
    return Decimal(value).quantize(places, rounding=ROUNDING)


def within_places(value: Decimal, places: Decimal) -> bool:
    """Whether ``value`` needs no more decimals than ``places`` (e.g. 0.01)."""
    return value == value.quantize(places, rounding=ROUND_DOWN)


def hectares(square_metres: float | Decimal) -> Decimal:
    """Hectares from square metres, exactly (no rounding): a float enters as
    its shortest decimal text (repr), so 0.1 m² is 0.00001 ha, not
    0.0000100000000000000005551... Round for storage with ``area_ha``."""
    if isinstance(square_metres, Decimal):
        return square_metres / M2_PER_HA
    return Decimal(repr(float(square_metres))) / M2_PER_HA


def area_ha(square_metres: float | Decimal) -> Decimal:
    """Hectares from square metres, rounded to 0.0001 ha (1 m²)."""
    return rounded(hectares(square_metres), AREA_PLACES)


def money(value: Decimal | int | str, currency: str = "CNY") -> Decimal:
    """An amount rounded to the currency's smallest unit (CNY: 0.01)."""
    return rounded(Decimal(value), _unit(currency))


def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCY_PLACES[currency])


def parse_price(value: object, currency: str = "CNY") -> Decimal:
    """A price per tonne from user input, at the currency's places (95.7 ->
    95.70). More decimal places than the currency has (95.705) are refused,
    never rounded away: a buyer must see the price that is recorded."""
    number = _decimal(value, "price")
    places = CURRENCY_PLACES[currency]
    if number < 0:
        raise QuantityError("price", "negative")
    # Size first: quantizing a huge number (1e999) overflows the context.
    if number >= Decimal(10) ** (MAX_PRICE_DIGITS - places):
        raise QuantityError("price", "too_large")
    if not within_places(number, _unit(currency)):
        raise QuantityError("price", "price_places", places=places)
    return number.quantize(_unit(currency))


MAX_AMOUNT_DIGITS = MAX_PRICE_DIGITS + 12  # a price times up to 10^12 t


def parse_amount(value: object, currency: str = "CNY") -> Decimal:
    """A sum of money from user input (a payment received), at the
    currency's places; more places are refused, not rounded."""
    number = _decimal(value, "amount")
    places = CURRENCY_PLACES[currency]
    if number <= 0:
        raise QuantityError("amount", "not_positive")
    if number >= Decimal(10) ** (MAX_AMOUNT_DIGITS - places):
        raise QuantityError("amount", "too_large")
    if not within_places(number, _unit(currency)):
        raise QuantityError("amount", "price_places", places=places)
    return number.quantize(_unit(currency))


def whole_tonnes(value: object) -> int:
    """A positive whole number of tonnes from user input."""
    number = _decimal(value, "tonnes")
    if number != number.to_integral_value():
        raise QuantityError("tonnes", "fractional")
    if number <= 0:
        raise QuantityError("tonnes", "not_positive")
    if number > MAX_TONNES:
        raise QuantityError("tonnes", "too_large")
    return int(number)


def floor_tonnes(t_co2e: Decimal) -> int:
    """Whole tonnes of an estimate, rounded down (credits are never rounded
    up); 0 for nothing or less."""
    if t_co2e <= 0:
        return 0
    return int(Decimal(t_co2e).to_integral_value(rounding=ROUND_DOWN))


def share_from_percent(percent: Decimal | int | str) -> Decimal:
    """A share of 1 from a percentage, exactly (10 -> 0.1, 12.345 -> 0.12345)."""
    return Decimal(percent) / 100


def percent_from_share(share: Decimal | int | str) -> Decimal:
    """A percentage from a share of 1, exactly and without trailing zeros
    (0.1000 -> 10; format with ``:f``, as 100 normalizes to 1E+2)."""
    return (Decimal(share) * 100).normalize()
