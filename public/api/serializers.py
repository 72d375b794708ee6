"""What the public lookups answer: a serial's whereabouts, and a certificate
with the journal's verdict on it. Holder and beneficiary names only where
their owners made them public (``public.selectors``)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trading import chain
from trading.anchors import signed_by_registry
from trading.models import Certificate, CreditBlock, JournalAnchor
from trading.verification import MAX_SEQUENCE


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
        return certificate.public_beneficiary or None

    def get_valid(self, certificate: Certificate) -> bool:
        """Whether the journal still proves it: each retire entry's hashes
        recomputed and its links to the entries around it checked, now."""
        return self.context["check"].valid

    def get_problems(self, certificate: Certificate) -> list[str]:
        return self.context["check"].problems

    @extend_schema_field(EntryCheckSerializer(many=True))
    def get_entries(self, certificate: Certificate) -> list[dict]:
        return EntryCheckSerializer(self.context["check"].entries, many=True).data


class PublishedHeadSerializer(serializers.Serializer):
    """A journal head as the registry published it (``trading.chain`` defines
    the signed bytes), with whether its signature checks with the registry's
    keys now."""

    id = serializers.IntegerField()
    format = serializers.SerializerMethodField()
    sequence = serializers.IntegerField()
    entry_hash = serializers.CharField()
    published_at = serializers.SerializerMethodField(
        help_text="UTC, exactly as signed: YYYY-MM-DDTHH:MM:SSZ."
    )
    key_id = serializers.CharField(help_text="SHA-256 of the raw public key, hex.")
    public_key = serializers.CharField(help_text="Raw Ed25519 public key, base64.")
    signature = serializers.CharField(help_text="Ed25519 signature, base64.")
    signed_by_registry = serializers.SerializerMethodField()

    def get_format(self, anchor: JournalAnchor) -> str:
        return anchor.document()["format"]

    def get_published_at(self, anchor: JournalAnchor) -> str:
        return anchor.document()["published_at"]

    def get_signed_by_registry(self, anchor: JournalAnchor) -> bool:
        return signed_by_registry(anchor, self.context["trusted"])


class HeadToCheckSerializer(serializers.Serializer):
    """A published head to check: the JSON object exactly as published (the
    ``key_id`` may be left out). Describes the body for the schema; the check
    itself reads it (``trading.verification.parse_anchor``)."""

    format = serializers.ChoiceField(choices=[chain.HEAD_FORMAT])
    sequence = serializers.IntegerField(min_value=1, max_value=MAX_SEQUENCE - 1)
    entry_hash = serializers.RegexField(r"^[0-9a-f]{64}$")
    published_at = serializers.RegexField(
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
    )
    key_id = serializers.CharField(
        required=False, help_text="The public key's fingerprint, as published."
    )
    # Base64 of 32 and of 64 bytes.
    public_key = serializers.RegexField(r"^\s*[A-Za-z0-9+/]{43}=\s*$")
    signature = serializers.RegexField(r"^\s*[A-Za-z0-9+/]{86}==\s*$")


class HeadCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    signature_valid = serializers.BooleanField()
    key_trusted = serializers.BooleanField(
        help_text="Signed with the registry's current or an earlier key."
    )
    contained = serializers.BooleanField(
        help_text="Today's journal has the entry at this sequence with this hash."
    )
    chain_intact = serializers.BooleanField(
        help_text="Today's journal verifies from its first entry to its last."
    )
    sequence = serializers.IntegerField()
    entry_hash = serializers.CharField()
    journal_sequence = serializers.IntegerField(
        help_text="The last entry of today's journal."
    )
    problems = serializers.ListField(child=serializers.CharField())


class PreviousKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    public_key = serializers.CharField()


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    key_id = serializers.CharField()
    public_key = serializers.CharField()
    public_key_pem = serializers.CharField()
    previous_keys = PreviousKeySerializer(many=True)
    head_format = serializers.CharField()
    signed_message = serializers.CharField(
        help_text="The bytes a signature covers, with placeholders."
    )
