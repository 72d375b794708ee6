"""Date pickers keep ISO dates on the Chinese pages too (a localized value
would leave the browser's picker empty and the field 'required')."""

from datetime import date

from django import forms
from django.utils import translation

from registry.forms import IsoDateInput


class PeriodForm(forms.Form):
    start = forms.DateField(widget=IsoDateInput())


def test_a_date_picker_shows_an_iso_date_in_every_language():
    for language in ("zh-hans", "en"):
        with translation.override(language):
            html = str(PeriodForm(initial={"start": date(2021, 1, 1)})["start"])
        assert 'type="date"' in html
        assert 'value="2021-01-01"' in html, language
