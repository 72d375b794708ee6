from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common.forms import IsoDateInput
from registry import boundaries
from registry.models import (
    AdministrativeDivision,
    Organization,
    Project,
    RoleGrant,
    User,
)
from registry.roles import Role
from registry.selectors import list_counties


class BoundaryMapWidget(forms.Textarea):
    """A Leaflet map on which a boundary is drawn or shown; the value is GeoJSON
    (EPSG:4326) in a hidden textarea, so the form also works without the map."""

    template_name = "registry/widgets/boundary_map.html"

    class Media:
        css = {
            "all": (
                "vendor/leaflet/leaflet.css",
                "vendor/leaflet-draw/leaflet.draw.css",
            )
        }
        js = (
            "vendor/leaflet/leaflet.js",
            "vendor/leaflet-draw/leaflet.draw.js",
            "js/maps.js",
        )

    def format_value(self, value):
        if value is None or value == "":
            return ""
        if hasattr(value, "json"):  # a GEOS geometry (Django admin, edit forms)
            return value.json
        return str(value)


class DivisionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: AdministrativeDivision) -> str:
        return f"{obj.name_zh} {obj.name_en}"


class OrganizationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Organization) -> str:
        return obj.display_name


class ProjectForm(forms.Form):
    """Project details plus its boundary, uploaded as a file or drawn on the map.

    ``clean`` parses the boundary (``self.boundary``); a preview re-renders the
    form with the parsed boundary in the map field, so the file need not be sent
    again.
    """

    name_zh = forms.CharField(label=_("Name (Chinese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200)
    owner = OrganizationChoiceField(
        label=_("Owner"), queryset=Organization.objects.none()
    )
    county = DivisionChoiceField(
        label=_("County or district"), queryset=AdministrativeDivision.objects.none()
    )
    ecosystem_focus = forms.ChoiceField(
        label=_("Ecosystem focus"), choices=Project.Ecosystem.choices
    )
    crediting_start = forms.DateField(
        label=_("Crediting period start"),
        widget=IsoDateInput(),
    )
    crediting_end = forms.DateField(
        label=_("Crediting period end"),
        widget=IsoDateInput(),
    )
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    boundary_file = forms.FileField(
        label=_("Boundary file"),
        required=False,
        help_text=_(
            "GeoJSON, KML, zipped Shapefile (.zip with .shp, .shx, .dbf, .prj) or "
            "GeoPackage, in WGS84, CGCS2000 or a CGCS2000 Gauss-Kruger zone."
        ),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".geojson,.json,.kml,.zip,.gpkg"}
        ),
    )
    boundary_crs = forms.TypedChoiceField(
        label=_("Coordinate system of the file"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("Only needed when the file does not say (e.g. no .prj)."),
    )
    boundary_geojson = forms.CharField(
        label=_("Or draw the boundary on the map"),
        required=False,
        widget=BoundaryMapWidget(attrs={"rows": 3}),
    )
    design_document = forms.FileField(
        label=_("Project design document"),
        required=False,
        help_text=_("PDF, PNG or JPEG, at most 20 MB."),
    )
    land_tenure = forms.FileField(
        label=_("Land-tenure proof"),
        required=False,
        help_text=_("PDF, PNG or JPEG, at most 20 MB. Not shown publicly."),
    )

    def __init__(self, *args, organizations, boundary_required=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = organizations
        if len(organizations) == 1:  # most staff act for one organization
            self.fields["owner"].empty_label = None
        self.fields["county"].queryset = list_counties().defer("boundary")
        self.fields["boundary_crs"].choices = [
            ("", _("As stated in the file")),
            *boundaries.crs_choices(),
        ]
        self.boundary_required = boundary_required
        self.boundary: boundaries.Boundary | None = None

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("boundary_file")
        drawn = (cleaned.get("boundary_geojson") or "").strip()
        try:
            if upload:
                self.boundary = boundaries.read_boundary_file(
                    upload, declared_srid=cleaned.get("boundary_crs")
                )
            elif drawn:
                self.boundary = boundaries.parse_geojson_geometry(drawn)
        except ValidationError as error:
            field = "boundary_file" if upload else "boundary_geojson"
            self.add_error(field, error)
            return cleaned
        if self.boundary is None and self.boundary_required:
            self.add_error(
                "boundary_file",
                _("Upload a boundary file or draw the boundary on the map."),
            )
        if self.boundary is not None:
            # Keep the parsed boundary in the form so a preview or an error
            # elsewhere does not make the user upload the file again.
            self.data = self.data.copy()
            self.data["boundary_geojson"] = self.boundary.geometry.json
        return cleaned

    def documents(self) -> list[tuple[str, object]]:
        return [
            (kind, self.cleaned_data[field])
            for field, kind in (
                ("design_document", "design_document"),
                ("land_tenure", "land_tenure"),
            )
            if self.cleaned_data.get(field)
        ]


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
    )


class ProjectFilterForm(forms.Form):
    text = forms.CharField(label=_("Search"), required=False, max_length=100)
    county = forms.ChoiceField(label=_("County or district"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)
    ecosystem = forms.ChoiceField(label=_("Ecosystem focus"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["county"].choices = [("", _("All"))] + [
            (division.adcode, division.display_name)
            for division in list_counties().defer("boundary")
        ]
        self.fields["status"].choices = [("", _("All")), *Project.Status.choices]
        self.fields["ecosystem"].choices = [("", _("All")), *Project.Ecosystem.choices]

    def filters(self) -> dict:
        """Valid filters only; an unknown value is ignored rather than an error."""
        if not self.is_valid():
            return {
                name: value
                for name, value in self.cleaned_data.items()
                if name not in self.errors
            }
        return self.cleaned_data


# Role grants --------------------------------------------------------------------


class RoleGrantForm(forms.Form):
    """A request to change roles or members. Which fields matter depends on the
    kind; the service says which are missing (registry.services)."""

    kind = forms.ChoiceField(
        label=pgettext_lazy("role grant", "Change"), choices=RoleGrant.Kind.choices
    )
    user = forms.CharField(
        label=_("Username"),
        required=False,
        max_length=150,
        help_text=_("The existing user the change is about."),
    )
    role = forms.ChoiceField(label=_("Role"), required=False)
    organization = OrganizationChoiceField(
        label=_("Organization"),
        required=False,
        queryset=Organization.objects.order_by("name_en", "pk"),
    )
    username = forms.CharField(
        label=_("New user's username"), required=False, max_length=150
    )
    first_name = forms.CharField(
        label=_("New user's given name"), required=False, max_length=150
    )
    last_name = forms.CharField(
        label=_("New user's family name"), required=False, max_length=150
    )
    email = forms.EmailField(
        label=_("New user's e-mail address"),
        required=False,
        help_text=_(
            "The new user chooses a password through a one-time link sent here; "
            "nobody else sets it."
        ),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with the change, for whoever decides and audits it."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", "---------"), *Role.choices]

    def clean_user(self):
        name = self.cleaned_data["user"].strip()
        if not name:
            return None
        user = User.objects.filter(username=name).first()
        if user is None:
            raise forms.ValidationError(
                _("There is no user %(username)s.") % {"username": name}
            )
        return user


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Note (required to reject)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RoleGrantFilterForm(forms.Form):
    text = forms.CharField(label=_("Search"), required=False, max_length=150)
    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(
        label=pgettext_lazy("role grant", "Change"), required=False
    )
    role = forms.ChoiceField(label=_("Role"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("All")), *RoleGrant.Status.choices]
        self.fields["kind"].choices = [("", _("All")), *RoleGrant.Kind.choices]
        self.fields["role"].choices = [("", _("All")), *Role.choices]

    def filters(self) -> dict:
        """Valid filters only; an unknown value is ignored rather than an error."""
        self.is_valid()
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in self.errors
        }
