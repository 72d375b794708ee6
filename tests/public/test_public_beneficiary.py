"""Beneficiary privacy is decided in one place, ``Certificate.public_beneficiary``:
every public rendering of a certificate's beneficiary goes through it."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from trading.models import Certificate

pytestmark = pytest.mark.django_db

STAND_IN = "ONLY-THE-PROPERTY-SAYS-THIS"


def test_the_name_is_public_only_where_the_beneficiary_chose_it(retire):
    named = retire(beneficiary="Named Co", public=True)
    hidden = retire(beneficiary="Hidden Co", public=False)
    assert named.public_beneficiary == "Named Co"
    assert hidden.public_beneficiary == ""


def _body(response) -> bytes:
    return (
        b"".join(response.streaming_content) if response.streaming else response.content
    )


def test_every_public_rendering_asks_the_property(retire, client, monkeypatch):
    """With the property answering a stand-in, the stand-in (and never the
    stored name) is what the pages, the CSV, the PDF and the API show."""
    certificate = retire(beneficiary="Stored Name Co", public=True)
    monkeypatch.setattr(Certificate, "public_beneficiary", property(lambda _: STAND_IN))
    for url in (
        reverse("public:certificate", args=[certificate.token]),
        reverse("public:certificate-verify", args=[certificate.token]),
        reverse("public:retirements"),
        reverse("public:retirements-csv"),
        f"/api/v1/certificates/{certificate.number}/",
    ):
        body = _body(client.get(url))
        assert STAND_IN.encode() in body, url
        assert b"Stored Name Co" not in body, url
    pdf = client.get(reverse("public:certificate-pdf", args=[certificate.token]))
    text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert STAND_IN in text


def test_the_dashboard_tags_a_beneficiary_the_public_does_not_see(
    retire, client, seller
):
    retire(beneficiary="Quiet Co", public=False)
    client.force_login(seller)
    page = client.get(reverse("trading:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Quiet Co" in page.content.decode()  # the holder sees their own
    assert "not named publicly" in page.content.decode()
