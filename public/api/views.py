"""Public lookups, no sign-in: a serial and a certificate, as on the public
pages (``public.views``), throttled like every anonymous endpoint."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from public import selectors
from public.api.serializers import CertificateSerializer, SerialSerializer
from trading import serials
from trading.certificates import check_certificate


class SerialView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=SerialSerializer, operation_id="serials_retrieve")
    def get(self, request, serial: str):
        """Which batch a serial belongs to, its state and holder now, and its
        certificate if it is retired."""
        number = serials.parse_serial(serial)
        found = None if number is None else selectors.lookup_serial(serial=number)
        if found is None:
            raise exceptions.NotFound()
        return Response(SerialSerializer(found, context={"request": request}).data)


class CertificateView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=CertificateSerializer, operation_id="certificates_retrieve"
    )
    def get(self, request, number: str):
        """A retirement certificate by its number (e.g. BJ-RC-2026-000123) or its
        verification code (the token in its QR code), with the journal's
        verdict: ``valid`` is recomputed on every request."""
        certificate = selectors.get_certificate_by_number(
            number=number
        ) or selectors.get_certificate(token=number, with_holder=False)
        if certificate is None:
            raise exceptions.NotFound()
        check = check_certificate(certificate)
        return Response(
            CertificateSerializer(
                certificate, context={"request": request, "check": check}
            ).data
        )
