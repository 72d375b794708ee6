"""Serializer fields every app's API shares."""

from rest_framework import serializers

from common import quantities
from common.errors import quantity_message


class PriceField(serializers.DecimalField):
    """A price per tonne read as the web form's is (common.quantities.parse_price):
    95.705 is refused with ``price_places``, never rounded."""

    def __init__(self, *, currency: str = "CNY", **kwargs):
        self.currency = currency
        super().__init__(
            max_digits=quantities.MAX_PRICE_DIGITS,
            decimal_places=quantities.CURRENCY_PLACES[currency],
            **kwargs,
        )

    def to_internal_value(self, data):
        try:
            return quantities.parse_price(data, self.currency)
        except quantities.QuantityError as error:
            raise serializers.ValidationError(
                quantity_message(error), code=error.code
            ) from None


class AmountField(serializers.DecimalField):
    """A sum of money read as the web form reads it
    (common.quantities.parse_amount): more than 0, to the fen; 4750.005 is
    refused with ``price_places``, never rounded."""

    def __init__(self, *, currency: str = "CNY", **kwargs):
        self.currency = currency
        kwargs.setdefault("min_value", 0)
        super().__init__(
            max_digits=quantities.MAX_AMOUNT_DIGITS,
            decimal_places=quantities.CURRENCY_PLACES[currency],
            **kwargs,
        )

    def to_internal_value(self, data):
        try:
            return quantities.parse_amount(data, self.currency)
        except quantities.QuantityError as error:
            raise serializers.ValidationError(
                quantity_message(error), code=error.code
            ) from None


class SlugField(serializers.SlugRelatedField):
    """A related object named by a slug, refusing text no slug can hold (a NUL
    character, which PostgreSQL cannot even compare) as "does not exist"
    rather than letting the lookup fail as a server error."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="\\x00")
        return super().to_internal_value(data)
