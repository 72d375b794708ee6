from django import forms
from django.utils.translation import gettext_lazy as _

from common.forms import IsoDateInput
from common.quantities import share_from_percent
from estimation.models import (
    ClassScheme,
    EstimationRun,
    LandCoverDataset,
    Methodology,
)
from registry.models import Organization, Project


class NamedChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return str(obj)


class DatasetUploadForm(forms.Form):
    name_zh = forms.CharField(label=_("Name (Chinese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200)
    organization = NamedChoiceField(
        label=_("Organization"), queryset=Organization.objects.none()
    )
    product = forms.ChoiceField(
        label=_("Product"), choices=LandCoverDataset.Product.choices
    )
    year = forms.IntegerField(label=_("Year"), min_value=1970, max_value=2100)
    scheme = NamedChoiceField(
        label=_("Class scheme"), queryset=ClassScheme.objects.all()
    )
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "A GeoTIFF of class codes (any coordinate system, tiled or not, "
            "Cloud-Optimized included), or land-use polygons as a GeoPackage or a "
            "zipped Shapefile."
        ),
    )
    class_field = forms.CharField(
        label=_("Class-code field"),
        required=False,
        max_length=64,
        help_text=_(
            "For land-use polygons only: the field holding the class code, e.g. DLBM."
        ),
    )

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations
        if len(organizations) == 1:
            self.fields["organization"].empty_label = None


class RunForm(forms.Form):
    project = NamedChoiceField(label=_("Project"), queryset=Project.objects.none())
    dataset = NamedChoiceField(
        label=_("Land cover"), queryset=LandCoverDataset.objects.none()
    )
    methodology = NamedChoiceField(
        label=_("Methodology"), queryset=Methodology.objects.all()
    )
    baseline_dataset = NamedChoiceField(
        label=_("Baseline land cover"),
        queryset=LandCoverDataset.objects.none(),
        required=False,
        help_text=_("Only for the stock-difference method: the earlier map."),
    )
    period_start = forms.DateField(
        label=_("Monitoring period start"),
        widget=IsoDateInput(),
    )
    period_end = forms.DateField(
        label=_("Monitoring period end"), widget=IsoDateInput()
    )
    # Text, read by the service (common.quantities.parse_price) as the API's
    # is: 95.705 is refused, never rounded to 95.70.
    price_cny_per_t_co2e = forms.CharField(
        label=_("Carbon price (CNY per t CO2e)"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text=_("Optional; for example 95.70, the 2024 national ETS average."),
    )

    def __init__(self, *args, projects, datasets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        self.fields["dataset"].queryset = datasets
        self.fields["baseline_dataset"].queryset = datasets


class MonitoringPeriodForm(forms.Form):
    monitoring_start = forms.DateField(
        label=_("Monitoring period start"),
        widget=IsoDateInput(),
    )
    monitoring_end = forms.DateField(
        label=_("Monitoring period end"),
        widget=IsoDateInput(),
        help_text=_(
            "Within the run's period and the project's crediting period, and over "
            "before today."
        ),
    )


class SubmitVerificationForm(MonitoringPeriodForm):
    note = forms.CharField(
        label=_("Note for the verifier"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ResubmitVerificationForm(MonitoringPeriodForm):
    """A rejected verification answered: the revised run (or the same one) and
    what was changed."""

    run = NamedChoiceField(
        label=_("Estimation run"), queryset=EstimationRun.objects.none()
    )
    note = forms.CharField(
        label=_("What was changed"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The verifier reads this next to their findings."),
    )

    field_order = ["run", "monitoring_start", "monitoring_end", "note"]

    def __init__(self, *args, runs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = runs
        self.fields["run"].label_from_instance = lambda run: (
            _("Run #%(pk)s · %(methodology)s · %(start)s – %(end)s")
            % {
                "pk": run.pk,
                "methodology": run.methodology,
                "start": run.period_start.isoformat(),
                "end": run.period_end.isoformat(),
            }
        )


class DecisionForm(forms.Form):
    reasons = forms.CharField(
        label=_("Findings (required to reject)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class IssueForm(forms.Form):
    buffer_share_percent = forms.DecimalField(
        label=_("Buffer share (%)"),
        max_digits=6,
        decimal_places=2,
        help_text=_(
            "The methodology's non-permanence buffer share; change it for this "
            "project only with a reason."
        ),
    )
    buffer_share_reason = forms.CharField(
        label=_("Reason for another buffer share"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def buffer_share(self):
        """The share as a fraction (10 % -> 0.1), for the service to check."""
        return share_from_percent(self.cleaned_data["buffer_share_percent"])
