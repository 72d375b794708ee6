import uuid

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common.forms import IsoDateInput
from registry.models import Account
from trading.models import CreditBatch, LedgerEntry, TradeRequest


class AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Account) -> str:
        return f"{obj.number} · {obj.organization.display_name}"


class RequestForm(forms.Form):
    """Common fields. The idempotency key is made when the form is shown, so a
    double click or a resubmitted page acts once."""

    from_account = AccountChoiceField(
        label=_("From account"), queryset=Account.objects.none()
    )
    quantity = forms.CharField(
        label=_("Quantity (t CO2e)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    vintage = forms.IntegerField(
        label=_("Vintage"),
        required=False,
        min_value=2000,
        max_value=2100,
        help_text=_("Optional: take credits of this vintage only."),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_account"].queryset = accounts
        if len(accounts) == 1:
            self.fields["from_account"].empty_label = None
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)


class TransferForm(RequestForm):
    to_account_number = forms.CharField(
        label=_("To account number"),
        max_length=20,
        help_text=_("The buyer's public account number, e.g. BJ-H-000003."),
    )
    price_per_tonne = forms.CharField(
        label=_("Price (CNY per t CO2e)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    def clean_to_account_number(self):
        number = self.cleaned_data["to_account_number"].strip().upper()
        account = (
            Account.objects.select_related("organization").filter(number=number).first()
        )
        if account is None:
            raise forms.ValidationError(
                _("There is no account %(number)s.") % {"number": number}
            )
        self.to_account = account
        return number


class RetirementForm(RequestForm):
    beneficiary = forms.CharField(label=_("Beneficiary"), max_length=200)
    beneficiary_public = forms.BooleanField(
        label=_("Show the beneficiary's name on the public certificate"),
        required=False,
        initial=True,
    )
    purpose = forms.ChoiceField(
        label=_("Purpose"), choices=TradeRequest.Purpose.choices
    )
    reporting_year = forms.IntegerField(
        label=_("Reporting year"), min_value=2000, max_value=2100
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reporting_year"].initial = timezone.localdate().year


class CancellationForm(RequestForm):
    """A registry admin's cancellation: the reason is required and public."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        note = self.fields["note"]
        note.required = True
        note.label = _("Reason for the cancellation")
        note.help_text = _(
            "For example a reversal covered from the buffer pool, or credits "
            "issued in error. Another registry admin reviews it."
        )
        # The list offers only accounts credits can be cancelled from; another
        # account number (a retirement or cancellation account) gets the
        # service's own reason, not "select a valid choice".
        self.fields["from_account"].error_messages["invalid_choice"] = _(
            "Credits can only be cancelled from a holding account or the buffer pool."
        )


class ReviewForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (required to reject)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class JournalFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("", _("All")), *LedgerEntry.Kind.choices],
    )
    account = forms.CharField(label=_("Account number"), required=False, max_length=20)
    batch = forms.IntegerField(label=_("Batch"), required=False, min_value=1)
    # Contexts: "From"/"To" also name a transfer's accounts, translated otherwise.
    since = forms.DateField(
        label=pgettext_lazy("start of a date range", "From"),
        required=False,
        widget=IsoDateInput(),
    )
    until = forms.DateField(
        label=pgettext_lazy("end of a date range", "To"),
        required=False,
        widget=IsoDateInput(),
    )


# The market ------------------------------------------------------------------------


class BatchChoiceField(forms.ModelChoiceField):
    """A batch the seller holds active credits of, with how many."""

    def label_from_instance(self, obj) -> str:
        return _("%(label)s · vintage %(vintage)s · %(active)s t active") % {
            "label": obj.serial_label,
            "vintage": obj.vintage,
            "active": f"{obj.active_tonnes:,}",
        }


class KeyedForm(forms.Form):
    """The idempotency key is made when the form is shown, so a double click
    or a resubmitted page acts once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)


class ListingForm(KeyedForm):
    account = AccountChoiceField(
        label=_("From account"), queryset=Account.objects.none()
    )
    batch = BatchChoiceField(label=_("Batch"), queryset=CreditBatch.objects.none())
    quantity = forms.CharField(
        label=_("Quantity to list (t CO2e)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    price_per_tonne = forms.CharField(
        label=_("Price (CNY per t CO2e)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    minimum_lot = forms.CharField(
        label=_("Minimum lot (t CO2e)"),
        max_length=20,
        initial="1",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
        help_text=_(
            "The least a buyer may order (the last tonnes left are sold "
            "whatever their number)."
        ),
    )
    ends_on = forms.DateField(
        label=_("Open until"),
        required=False,
        widget=IsoDateInput(),
        help_text=_(
            "Optional: the last day of the offer; unsold credits then "
            "come back to the account."
        ),
    )
    note = forms.CharField(
        label=_("Note for buyers"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, accounts, batches, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts
        self.fields["batch"].queryset = batches
        if len(accounts) == 1:
            self.fields["account"].empty_label = None


class LowerListingForm(forms.Form):
    quantity_left = forms.CharField(
        label=_("Tonnes to keep on offer"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )


class OrderForm(KeyedForm):
    buyer_account = AccountChoiceField(
        label=_("Into account"), queryset=Account.objects.none()
    )
    quantity = forms.CharField(
        label=_("Quantity (t CO2e)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    retire_on_delivery = forms.BooleanField(
        label=_("Retire the credits on delivery for a beneficiary"),
        required=False,
        help_text=_(
            "To offset an event or a product in one step: the credits "
            "are retired when the order settles, and the certificate "
            "follows."
        ),
    )
    beneficiary = forms.CharField(
        label=_("Beneficiary"), required=False, max_length=200
    )
    beneficiary_public = forms.BooleanField(
        label=_("Show the beneficiary's name on the public certificate"),
        required=False,
        initial=True,
    )
    purpose = forms.ChoiceField(
        label=_("Purpose"),
        required=False,
        choices=[("", "—"), *TradeRequest.Purpose.choices],
    )
    reporting_year = forms.IntegerField(
        label=_("Reporting year"), required=False, min_value=2000, max_value=2100
    )

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["buyer_account"].queryset = accounts
        if len(accounts) == 1:
            self.fields["buyer_account"].empty_label = None
        self.fields["reporting_year"].initial = timezone.localdate().year


class PaymentForm(forms.Form):
    amount = forms.CharField(
        label=_("Amount received (CNY)"),
        max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    paid_on = forms.DateField(label=_("Date the money arrived"), widget=IsoDateInput())
    reference = forms.CharField(label=_("Bank reference"), max_length=100)


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (the buyer sees it)"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
