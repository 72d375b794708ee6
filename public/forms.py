"""Forms of the public registry."""

from django import forms
from django.utils.translation import gettext_lazy as _

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
