"""Estimation serializers: shapes only; ``estimation.services`` decides."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from api.fields import PriceField, SlugField
from estimation.models import (
    ClassMapping,
    ClassScheme,
    Coefficient,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    SurveyCodeArea,
    Verification,
)


class ClassMappingSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClassMapping
        fields = ["code", "label", "ecosystem"]


class ClassSchemeSerializer(serializers.ModelSerializer):
    mappings = ClassMappingSerializer(many=True, read_only=True)

    class Meta:
        model = ClassScheme
        fields = [
            "slug",
            "name_zh",
            "name_en",
            "product",
            "nodata_codes",
            "description",
            "mappings",
        ]


class CoefficientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Coefficient
        fields = [
            "ecosystem",
            "pool",
            "value",
            "unit",
            "basis",
            "sign",
            "citation",
            "status",
        ]


class MethodologySerializer(serializers.ModelSerializer):
    coefficients = CoefficientSerializer(many=True, read_only=True)

    class Meta:
        model = Methodology
        fields = [
            "id",
            "slug",
            "version",
            "name_zh",
            "name_en",
            "kind",
            "citation",
            "is_default",
            "buffer_share",
            "uncertainty_deduction",
            "frozen_at",
            "coefficients",
        ]


class LandCoverDatasetSerializer(serializers.ModelSerializer):
    scheme = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = LandCoverDataset
        fields = [
            "id",
            "name_zh",
            "name_en",
            "product",
            "year",
            "scheme",
            "kind",
            "original_name",
            "size_bytes",
            "sha256",
            "file_status",
            "file_checked_at",
            "class_field",
            "crs",
            "description",
            "organization",
            "created_at",
        ]


class LandCoverUploadSerializer(serializers.Serializer):
    """A multipart upload: the file and what it is."""

    organization = serializers.IntegerField(
        min_value=1, help_text="Id of an organization the caller acts for."
    )
    name_zh = serializers.CharField(max_length=200)
    name_en = serializers.CharField(max_length=200)
    product = serializers.ChoiceField(choices=LandCoverDataset.Product.choices)
    year = serializers.IntegerField(min_value=1970, max_value=2100)
    scheme = SlugField(slug_field="slug", queryset=ClassScheme.objects.all())
    file = serializers.FileField(
        help_text=(
            "A GeoTIFF of class codes, or land-use polygons as a GeoPackage or a "
            "zipped Shapefile."
        )
    )
    class_field = serializers.CharField(
        required=False, allow_blank=True, max_length=64, default=""
    )

    def validate_organization(self, value):
        # The caller's organizations, given by the view.
        organization = self.context["organizations"].filter(pk=value).first()
        if organization is None:
            raise serializers.ValidationError(
                _("You do not act for this organization."), code="organization"
            )
        return organization


class EcosystemResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = EcosystemResult
        fields = [
            "ecosystem",
            "rank",
            "area_ha",
            "share",
            "coefficient",
            "coefficient_unit",
            "sink_t_c_per_year",
            "sink_t_co2e_per_year",
            "sink_t_co2e_period",
            "value_cny_per_year",
        ]


class SurveyCodeAreaSerializer(serializers.ModelSerializer):
    class Meta:
        model = SurveyCodeArea
        fields = ["code", "name", "area_ha"]


class EstimationRunSerializer(serializers.ModelSerializer):
    """A run: poll ``status`` and ``progress``; once succeeded, the table."""

    project = serializers.SlugRelatedField(slug_field="code", read_only=True)
    results = EcosystemResultSerializer(many=True, read_only=True)
    # Land-use polygon runs: area by second-level survey code.
    code_areas = SurveyCodeAreaSerializer(many=True, read_only=True)
    # In the caller's language (the stored text is in the worker's).
    error_message = serializers.CharField(source="failure_reason", read_only=True)

    class Meta:
        model = EstimationRun
        fields = [
            "id",
            "project",
            "organization",
            "dataset",
            "baseline_dataset",
            "methodology",
            "period_start",
            "period_end",
            "price_cny_per_t_co2e",
            "status",
            "progress",
            "parts_total",
            "parts_done",
            "error_code",
            "error_message",
            "attempts",
            "retry_of",
            "fingerprint",
            "boundary_area_ha",
            "covered_area_ha",
            "nodata_area_ha",
            "outside_area_ha",
            "unmapped_codes",
            "repaired_patches",
            "years",
            "total_t_c_per_year",
            "total_t_co2e_per_year",
            "total_t_co2e_period",
            "total_value_cny_per_year",
            "total_value_cny_period",
            "created_at",
            "started_at",
            "finished_at",
            "results",
            "code_areas",
        ]


class RunCreateSerializer(serializers.Serializer):
    project = serializers.CharField(max_length=20, help_text="Project code.")
    dataset = serializers.IntegerField(min_value=1)
    methodology = serializers.IntegerField(min_value=1)
    baseline_dataset = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Only for the stock-difference method: the earlier map.",
    )
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    price_cny_per_t_co2e = PriceField(required=False, allow_null=True)

    # Field -> (the view's queryset in the context, lookup, message if absent).
    CHOICES = {
        "project": ("projects", "code", _("There is no such project of yours.")),
        "dataset": ("datasets", "pk", _("There is no such land-cover dataset.")),
        "baseline_dataset": (
            "datasets",
            "pk",
            _("There is no such land-cover dataset."),
        ),
        "methodology": ("methodologies", "pk", _("There is no such methodology.")),
    }

    def _resolve(self, field, value):
        queryset, key, message = self.CHOICES[field]
        found = self.context[queryset].filter(**{key: value}).first()
        if found is None:
            raise serializers.ValidationError(message, code="does_not_exist")
        return found

    def validate_project(self, value):
        return self._resolve("project", value)

    def validate_dataset(self, value):
        return self._resolve("dataset", value)

    def validate_baseline_dataset(self, value):
        return None if value is None else self._resolve("baseline_dataset", value)

    def validate_methodology(self, value):
        return self._resolve("methodology", value)


class VerificationSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="code", read_only=True)
    batch = serializers.SerializerMethodField()

    class Meta:
        model = Verification
        fields = [
            "id",
            "run",
            "project",
            "monitoring_start",
            "monitoring_end",
            "status",
            "revises",
            "note",
            "submitted_by",
            "submitted_at",
            "verifier",
            "verification_body",
            "reasons",
            "decided_at",
            "fingerprint",
            "batch",
            "uncertainty_deduction",
            "buffer_share",
            "buffer_share_reason",
            "issued_at",
        ]

    def get_batch(self, verification) -> dict | None:
        batch = verification.batch
        if batch is None:
            return None
        return {
            "id": batch.pk,
            "serial_label": batch.serial_label,
            "quantity": batch.quantity,
            "buffer_quantity": batch.buffer_quantity,
        }


class VerificationCreateSerializer(serializers.Serializer):
    run = serializers.IntegerField(min_value=1)
    monitoring_start = serializers.DateField(
        required=False, allow_null=True, help_text="Defaults to the run's period."
    )
    monitoring_end = serializers.DateField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    revises = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="The rejected verification this submission answers.",
    )

    def validate_run(self, value):
        # The runs and verifications the caller sees, given by the view.
        run = self.context["runs"].filter(pk=value).first()
        if run is None:
            raise serializers.ValidationError(
                _("There is no such estimation run."), code="does_not_exist"
            )
        return run

    def validate_revises(self, value):
        if value is None:
            return None
        verification = self.context["verifications"].filter(pk=value).first()
        if verification is None:
            raise serializers.ValidationError(
                _("There is no such verification."), code="does_not_exist"
            )
        return verification


class DecisionSerializer(serializers.Serializer):
    reasons = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="The verifier's findings (required to reject).",
    )


class IssueSerializer(serializers.Serializer):
    buffer_share_percent = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        required=False,
        allow_null=True,
        help_text="Omit for the methodology's buffer share.",
    )
    buffer_share_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000
    )
