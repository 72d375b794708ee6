"""What the public lookups answer: a serial's whereabouts, and a certificate
with the journal's verdict on it. Holder and beneficiary names only where
their owners made them public (``public.selectors``)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trading.models import Certificate, CreditBlock


class CertificateLinkSerializer(serializers.Serializer):
    number = serializers.CharField()
    verification_url = serializers.SerializerMethodField()

    def get_verification_url(self, certificate: Certificate) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("public:certificate-verify", args=[certificate.token])
        )


class SerialSerializer(serializers.Serializer):
    serial = serializers.IntegerField()
    batch = serializers.IntegerField(source="batch.pk")
    serial_label = serializers.CharField(source="batch.serial_label")
    project = serializers.CharField(source="batch.project.code")
    vintage = serializers.IntegerField(source="batch.vintage")
    state = serializers.ChoiceField(
        choices=CreditBlock.State.choices, source="block.state", allow_null=True
    )
    holder = serializers.CharField(
        allow_blank=True, help_text="Blank unless the holder's account is public."
    )
    certificate = CertificateLinkSerializer(allow_null=True)


class EntryCheckSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(source="entry.sequence")
    batch = serializers.IntegerField(source="entry.batch_id")
    first_serial = serializers.IntegerField(source="entry.first_serial")
    last_serial = serializers.IntegerField(source="entry.last_serial")
    quantity = serializers.IntegerField(source="entry.quantity")
    previous_hash = serializers.CharField(source="entry.previous_hash")
    entry_hash = serializers.CharField(source="entry.entry_hash")
    valid = serializers.BooleanField(source="ok")
    problems = serializers.ListField(child=serializers.CharField())


class CertificateSerializer(CertificateLinkSerializer):
    beneficiary = serializers.SerializerMethodField()
    purpose = serializers.ChoiceField(
        choices=Certificate._meta.get_field("purpose").choices
    )
    reporting_year = serializers.IntegerField(allow_null=True)
    quantity = serializers.IntegerField()
    retired_at = serializers.DateTimeField()
    valid = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()
    entries = serializers.SerializerMethodField()

    def get_beneficiary(self, certificate: Certificate) -> str | None:
        """Null when the beneficiary chose not to be named."""
        return certificate.beneficiary if certificate.beneficiary_public else None

    def get_valid(self, certificate: Certificate) -> bool:
        """Whether the journal still proves it: each retire entry's hashes
        recomputed and its links to the entries around it checked, now."""
        return self.context["check"].valid

    def get_problems(self, certificate: Certificate) -> list[str]:
        return self.context["check"].problems

    @extend_schema_field(EntryCheckSerializer(many=True))
    def get_entries(self, certificate: Certificate) -> list[dict]:
        return EntryCheckSerializer(self.context["check"].entries, many=True).data
