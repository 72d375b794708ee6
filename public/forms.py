"""Forms of the public registry."""

from django import forms
from django.utils.translation import gettext_lazy as _

from common.errors import quantity_message
from common.quantities import QuantityError, parse_price
from registry.models import Project
from trading.selectors import LISTING_ORDERINGS
from trading.verification import MAX_ANCHOR_CHARACTERS


class HeadCheckForm(forms.Form):
    """A published journal head to check: pasted, or uploaded as its file."""

    head = forms.CharField(
        label=_("Published head (JSON)"),
        required=False,
        strip=True,
        max_length=MAX_ANCHOR_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 9, "spellcheck": "false"}),
    )
    head_file = forms.FileField(
        label=_("Or upload the head's JSON file"), required=False
    )

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("head"), cleaned.get("head_file")
        if self.errors:
            return cleaned
        if text and upload:
            raise forms.ValidationError(
                _("Paste the head or upload its file, not both."), code="both"
            )
        if upload:
            if upload.size > MAX_ANCHOR_CHARACTERS:
                raise forms.ValidationError(
                    _("A published head is a short JSON file; this one is too big."),
                    code="too_big",
                )
            cleaned["head"] = upload.read()
        elif not text:
            raise forms.ValidationError(
                _("Paste a published head, or upload its file."), code="empty"
            )
        return cleaned


# The market ---------------------------------------------------------------------

# trading.selectors.LISTING_ORDERINGS's keys, as a visitor reads them (a key
# added there without a label here still works, under its key).
SORT_LABELS = {
    "price": _("Price, lowest first"),
    "-price": _("Price, highest first"),
    "quantity": _("Tonnes left, fewest first"),
    "-quantity": _("Tonnes left, most first"),
    "vintage": _("Vintage, oldest first"),
    "-vintage": _("Vintage, newest first"),
    "newest": _("Newest listings first"),
}
DEFAULT_SORT = "price"
MIN_VINTAGE, MAX_VINTAGE = 2000, 2100


class MarketFilterForm(forms.Form):
    """The public market's filters. ``filters()`` gives the valid ones as
    ``public.selectors.market_listings`` takes them; an invalid one is an
    error on its field (the page says so) and is left out."""

    county = forms.ChoiceField(label=_("County or district"), required=False)
    ecosystem = forms.ChoiceField(
        label=_("Ecosystem focus"),
        required=False,
        choices=[("", _("All")), *Project.Ecosystem.choices],
    )
    vintage = forms.IntegerField(
        label=_("Vintage"),
        required=False,
        min_value=MIN_VINTAGE,
        max_value=MAX_VINTAGE,
        error_messages={
            "invalid": _("Enter the vintage as a year, e.g. 2025."),
            "min_value": _("Enter the vintage as a year, e.g. 2025."),
            "max_value": _("Enter the vintage as a year, e.g. 2025."),
        },
        widget=forms.NumberInput(attrs={"placeholder": "2025"}),
    )
    price_min = forms.CharField(
        label=_("Lowest price (CNY per t CO2e)"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    price_max = forms.CharField(
        label=_("Highest price (CNY per t CO2e)"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[(key, SORT_LABELS.get(key, key)) for key in LISTING_ORDERINGS],
    )
    # A project's listings (its page links here); kept across the filters.
    project = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput())

    def __init__(self, *args, counties: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.counties = counties
        self.fields["county"].choices = [("", _("All"))] + [
            (county["adcode"], county["name"]) for county in counties
        ]

    def _price(self, name: str):
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return None
        try:
            return parse_price(text)
        except QuantityError as error:
            raise forms.ValidationError(
                quantity_message(error), code=error.code
            ) from None

    def clean_price_min(self):
        return self._price("price_min")

    def clean_price_max(self):
        return self._price("price_max")

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("price_min"), cleaned.get("price_max")
        if low is not None and high is not None and low > high:
            self.add_error(
                "price_max",
                forms.ValidationError(
                    _("The highest price is below the lowest price."),
                    code="price_range",
                ),
            )
        return cleaned

    def filters(self) -> dict:
        """The valid filters, as ``market_listings`` keyword arguments."""
        self.is_valid()
        data = {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in self.errors
        }
        return {
            "county": data.get("county") or "",
            "ecosystem": data.get("ecosystem") or "",
            "vintage": data.get("vintage"),
            "price_min": data.get("price_min"),
            "price_max": data.get("price_max"),
            "sort": data.get("sort") or DEFAULT_SORT,
            "project": (data.get("project") or "").strip().upper(),
        }
