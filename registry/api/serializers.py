"""Registry serializers: they shape input and output; the rules stay in
``registry.services`` and ``registry.selectors``."""

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from registry import boundaries
from registry.models import AdministrativeDivision, Organization, Project
from registry.selectors import allowed_project_actions


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name_zh", "name_en", "kind", "uscc", "created_at"]


class OwnerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name_zh", "name_en", "kind"]


class ProjectSerializer(GeoFeatureModelSerializer):
    """A project as a GeoJSON Feature: the boundary (EPSG:4326, lon/lat) and
    its details as properties."""

    owner = OwnerSerializer(read_only=True)
    county = serializers.CharField(source="county.adcode", read_only=True)
    county_name_zh = serializers.CharField(source="county.name_zh", read_only=True)
    county_name_en = serializers.CharField(source="county.name_en", read_only=True)
    allowed_actions = serializers.SerializerMethodField(
        help_text="Lifecycle steps the caller may take now."
    )

    class Meta:
        model = Project
        geo_field = "boundary"
        id_field = "code"
        fields = [
            "code",
            "name_zh",
            "name_en",
            "owner",
            "county",
            "county_name_zh",
            "county_name_en",
            "status",
            "area_ha",
            "boundary_source_srid",
            "crediting_start",
            "crediting_end",
            "ecosystem_focus",
            "description",
            "created_at",
            "updated_at",
            "allowed_actions",
            "boundary",
        ]

    def get_allowed_actions(self, project) -> list[str]:
        return allowed_project_actions(self.context["request"].user, project)


@extend_schema_field(OpenApiTypes.OBJECT)
class GeoJSONInputField(serializers.Field):
    """A GeoJSON Geometry, Feature or FeatureCollection of polygons, parsed and
    checked by ``registry.boundaries`` exactly as the web form's drawn boundary."""

    default_error_messages = {"invalid": _("Give the boundary as a GeoJSON object.")}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        try:
            text = json.dumps(data)
        except (TypeError, ValueError, RecursionError):
            self.fail("invalid")
        return text

    def to_representation(self, value):
        return json.loads(value)


class ProjectWriteSerializer(serializers.Serializer):
    """What bureau staff send to create a draft or change one."""

    name_zh = serializers.CharField(max_length=200)
    name_en = serializers.CharField(max_length=200)
    owner = serializers.IntegerField(
        min_value=1, help_text="Id of an organization the caller acts for."
    )
    county = serializers.CharField(
        max_length=6, help_text="County adcode, e.g. 520521 (Dafang)."
    )
    crediting_start = serializers.DateField()
    crediting_end = serializers.DateField()
    ecosystem_focus = serializers.ChoiceField(choices=Project.Ecosystem.choices)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=10000
    )
    boundary = GeoJSONInputField(
        required=False,
        help_text=(
            "GeoJSON Geometry, Feature or FeatureCollection of polygons; lon/lat "
            "unless boundary_srid (or a GeoJSON crs member) says otherwise. "
            "Give either this or boundary_file."
        ),
    )
    boundary_file = serializers.FileField(
        required=False,
        help_text=(
            "Instead of boundary, in a multipart/form-data request: a GeoJSON, "
            "KML, zipped Shapefile or GeoPackage file of up to 20 MB, checked "
            "exactly as the web form's upload."
        ),
    )
    boundary_srid = serializers.ChoiceField(
        choices=sorted(boundaries.ACCEPTED_SRIDS),
        required=False,
        allow_null=True,
        help_text="EPSG code of the coordinates: 4326, 4490 or 4491-4554.",
    )

    def validate_owner(self, value):
        # The caller's organizations, given by the view.
        owner = self.context["organizations"].filter(pk=value).first()
        if owner is None:
            raise serializers.ValidationError(
                _("You do not act for this organization."), code="owner"
            )
        return owner

    def validate_county(self, value):
        county = AdministrativeDivision.objects.filter(
            adcode=value, level=AdministrativeDivision.Level.COUNTY
        ).first()
        if county is None:
            raise serializers.ValidationError(
                _("Choose one of Bijie's counties or districts."), code="county"
            )
        return county

    def validate(self, attrs):
        upload = attrs.pop("boundary_file", None)
        declared_srid = attrs.get("boundary_srid")
        # A multipart body cannot carry a GeoJSON object too: its boundary field
        # is text, which GeoJSONInputField refuses.
        if upload is not None:
            attrs["boundary"] = _parsed(
                "boundary_file",
                boundaries.read_boundary_file,
                upload,
                declared_srid=declared_srid,
            )
        elif "boundary" in attrs:
            attrs["boundary"] = _parsed(
                "boundary",
                boundaries.parse_geojson_geometry,
                attrs["boundary"],
                declared_srid=declared_srid,
            )
        elif not self.partial:
            raise serializers.ValidationError(
                {
                    "boundary": [
                        _("Send the boundary as GeoJSON or upload a boundary file.")
                    ]
                },
                code="required",
            )
        return attrs


def _parsed(field: str, parse, value, *, declared_srid):
    """``registry.boundaries``' reading of the boundary, its refusals as the
    field's errors with their codes."""
    try:
        return parse(value, declared_srid=declared_srid)
    except DjangoValidationError as error:
        raise serializers.ValidationError(
            {field: list(error.messages)},
            code=getattr(error, "code", None) or "boundary",
        ) from None


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class OverlapSerializer(serializers.Serializer):
    code = serializers.CharField(source="project.code")
    area_ha = serializers.DecimalField(max_digits=14, decimal_places=4)


class ProjectFilterSerializer(serializers.Serializer):
    """The list's query parameters, checked before they reach the database."""

    county = serializers.CharField(required=False, max_length=6)
    status = serializers.ChoiceField(required=False, choices=Project.Status.choices)
    ecosystem = serializers.ChoiceField(
        required=False, choices=Project.Ecosystem.choices
    )
    text = serializers.CharField(required=False, max_length=100)
