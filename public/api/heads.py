"""The published journal heads in the API, no sign-in, as on the public page
(``public.heads``): the heads, the registry's public key, and the check of a
head someone kept."""

from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.parsers import JSONParser
from public import selectors
from public.api.serializers import (
    HeadCheckSerializer,
    HeadToCheckSerializer,
    PublicKeySerializer,
    PublishedHeadSerializer,
)
from trading.anchors import public_key_info, trusted_public_keys
from trading.verification import check_anchor


class PublishedHeadListView(ListAPIView):
    """Every journal head the registry published, newest first."""

    permission_classes = [AllowAny]
    serializer_class = PublishedHeadSerializer

    def get_queryset(self):
        return selectors.list_published_heads()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "trusted": trusted_public_keys()}


class PublicKeyView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=PublicKeySerializer, operation_id="journal_key_retrieve")
    def get(self, request):
        """The registry's Ed25519 public key that signs the heads (and earlier
        keys still trusted), and the bytes a signature covers."""
        return Response(PublicKeySerializer(public_key_info()).data)


class HeadCheckView(APIView):
    permission_classes = [AllowAny]
    # The head is checked exactly as published, a JSON object: form fields
    # would turn its sequence into text.
    parser_classes = [JSONParser]

    @extend_schema(
        request=HeadToCheckSerializer,
        responses=HeadCheckSerializer,
        operation_id="journal_heads_check",
    )
    def post(self, request):
        """Whether a head the registry published is signed by its key and still
        contained in today's journal; ``problems`` says why not. Changes
        nothing. A body that is not a published head answers 400."""
        check = check_anchor(request.data, reuse_walk=True)
        return Response(
            HeadCheckSerializer(
                {
                    "valid": check.valid,
                    "signature_valid": check.signature_valid,
                    "key_trusted": check.key_trusted,
                    "contained": check.contained,
                    "chain_intact": check.chain_intact,
                    "sequence": check.sequence,
                    "entry_hash": check.entry_hash,
                    "journal_sequence": check.journal_sequence,
                    "problems": check.problems,
                }
            ).data
        )
