"""Retirement certificates: made at settlement, shown, printed and verified."""

import io

import pytest
import zxingcpp
from django.db import connection
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader

from registry.models import Account
from tests.public.conftest import CHINESE_BENEFICIARY, new_key
from tests.trading.test_guards import _tamper
from trading import services
from trading.certificates import check_certificate
from trading.models import Certificate, LedgerEntry

pytestmark = pytest.mark.django_db


def test_a_settled_retirement_gets_one_certificate_with_its_entries(retire):
    certificate = retire(quantity=250)
    assert certificate.number.startswith("BJ-RC-")
    assert certificate.number.endswith(f"{certificate.pk:06d}")
    assert len(certificate.token) == 22
    assert certificate.quantity == 250
    assert certificate.beneficiary == CHINESE_BENEFICIARY
    entries = LedgerEntry.objects.filter(
        trade_request=certificate.trade_request, kind="retire"
    )
    assert sum(entry.quantity for entry in entries) == 250
    assert certificate.account.kind == Account.Kind.HOLDING
    assert check_certificate(certificate).valid


def test_transfers_and_rejected_retirements_make_no_certificate(
    issue, seller, seller_account, buyer_account, admin
):
    issue()
    transfer = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=10,
        price_per_tonne="90",
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=transfer)
    retirement = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=5,
        beneficiary="X",
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
    )
    services.reject_request(actor=admin, request=retirement, reason="no")
    assert not Certificate.objects.exists()


def test_a_retirement_across_batches_has_one_range_per_block(
    issue, seller, seller_account, admin, client
):
    first, second = issue(quantity=100, buffer=0), issue(quantity=100, buffer=0)
    request = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=150,
        beneficiary="Two batches Ltd",
        purpose="event",
        reporting_year=2025,
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=request)
    certificate = Certificate.objects.get()
    check = check_certificate(certificate)
    assert check.valid
    assert [item.entry.batch_id for item in check.entries] == [first.pk, second.pk]
    page = client.get(reverse("public:certificate", args=[certificate.token]))
    assert page.content.decode().count("serial-label") == 2


def test_the_certificate_page_is_public_and_bilingual(retire, client):
    certificate = retire()
    url = reverse("public:certificate", args=[certificate.token])
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 200
    text = english.content.decode()
    assert "Retirement certificate" in text
    assert CHINESE_BENEFICIARY in text
    assert certificate.number in text
    assert "<svg" in text  # the QR code
    assert reverse("public:certificate-verify", args=[certificate.token]) in text
    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "注销证明" in chinese.content.decode()


def test_an_anonymous_beneficiary_is_not_shown_anywhere_public(retire, client):
    certificate = retire(beneficiary="Secret Buyer Co", public=False)
    for url in (
        reverse("public:certificate", args=[certificate.token]),
        reverse("public:certificate-verify", args=[certificate.token]),
        reverse("public:retirements"),
        reverse("public:retirements-csv"),
        reverse("public:search") + "?q=Secret",
    ):
        response = client.get(url)
        body = (
            b"".join(response.streaming_content)
            if response.streaming
            else response.content
        )
        assert b"Secret Buyer" not in body, url
    pdf = client.get(reverse("public:certificate-pdf", args=[certificate.token]))
    text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert "Secret Buyer" not in text
    assert "Anonymous" in text


def test_the_holders_name_shows_only_when_the_account_is_public(
    retire, client, seller_account
):
    certificate = retire()
    url = reverse("public:certificate", args=[certificate.token])
    assert "Forest farm" not in client.get(url).content.decode()
    Account.objects.filter(pk=seller_account.pk).update(is_public=True)
    assert "Forest farm" in client.get(url).content.decode()


def _pdf_text_and_qr(content: bytes) -> tuple[str, list[str]]:
    reader = PdfReader(io.BytesIO(content))
    text = "".join(page.extract_text() for page in reader.pages)
    codes = []
    for page in reader.pages:
        for image in page.images:
            picture = Image.open(io.BytesIO(image.data)).convert("L")
            codes += [result.text for result in zxingcpp.read_barcodes(picture)]
    return text, codes


def test_the_pdf_is_a4_with_the_chinese_name_and_a_qr_code_to_verify(retire, client):
    certificate = retire(quantity=321)
    response = client.get(
        reverse("public:certificate-pdf", args=[certificate.token]),
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "max-age" in response["Cache-Control"]
    reader = PdfReader(io.BytesIO(response.content))
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4 in points
    text, codes = _pdf_text_and_qr(response.content)
    assert CHINESE_BENEFICIARY in text
    assert certificate.number in text
    assert "321" in text
    verify_url = "http://testserver" + reverse(
        "public:certificate-verify", args=[certificate.token]
    )
    assert codes == [verify_url]
    assert client.get(verify_url).status_code == 200


def test_the_pdf_embeds_its_font(retire, client):
    certificate = retire()
    content = client.get(
        reverse("public:certificate-pdf", args=[certificate.token])
    ).content
    assert b"/FontFile2" in content  # TrueType program embedded (a subset)
    assert b"/ToUnicode" in content  # so the text can be searched and copied


def test_the_verification_page_says_valid(retire, client):
    certificate = retire()
    response = client.get(
        reverse("public:certificate-verify", args=[certificate.token])
    )
    assert response.status_code == 200
    assert 'data-valid="true"' in response.content.decode()
    assert "This certificate is valid" in response.content.decode()
    assert "no-cache" in response["Cache-Control"]


def test_a_broken_entry_hash_makes_the_verification_page_say_invalid(retire, client):
    certificate = retire()
    other = retire(beneficiary="Neighbour Ltd")
    entry = LedgerEntry.objects.get(
        trade_request=certificate.trade_request, kind="retire"
    )
    _tamper(
        f"UPDATE trading_ledgerentry SET quantity = quantity + 1, "
        f"last_serial = last_serial + 1 WHERE sequence = {entry.sequence}"
    )
    response = client.get(
        reverse("public:certificate-verify", args=[certificate.token])
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-valid="false"' in body
    assert "NOT valid" in body
    assert "no longer match its content hash" in body
    # Other certificates are unaffected.
    assert check_certificate(other).valid


def test_a_rewritten_entry_with_fresh_hashes_breaks_its_neighbours_link(retire):
    """An attacker who edits an entry and recomputes its own hashes still
    leaves the next entry pointing at the old hash."""
    from trading import chain

    certificate = retire()
    retire()  # an entry after it
    entry = LedgerEntry.objects.get(
        trade_request=certificate.trade_request, kind="retire"
    )
    entry.quantity += 1
    entry.last_serial += 1
    content = chain.content_hash(entry.payload())
    link = chain.link_hash(entry.previous_hash, entry.sequence, content)
    _tamper(
        f"UPDATE trading_ledgerentry SET quantity = {entry.quantity}, "
        f"last_serial = {entry.last_serial}, content_hash = '{content}', "
        f"entry_hash = '{link}' WHERE sequence = {entry.sequence}"
    )
    check = check_certificate(Certificate.objects.get(pk=certificate.pk))
    assert not check.valid
    problems = [problem for item in check.entries for problem in item.problems]
    assert problems == ["The entry after it in the journal does not link to it."]
    assert check.problems == [
        "The certificate's quantity differs from its retire entries' total."
    ]


def test_verification_costs_the_same_queries_however_long_the_journal(
    retire, django_assert_max_num_queries, client
):
    certificate = retire()
    for _ in range(5):
        retire(quantity=1)
    url = reverse("public:certificate-verify", args=[certificate.token])
    # the certificate, then its entries with their neighbours' hashes
    with django_assert_max_num_queries(2):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not-a-token",
        "x" * 300,
        "' OR 1=1 --",
        "%00",
        "BJ-RC-2026-000001",
    ],
)
def test_unknown_or_malformed_certificates_say_they_do_not_exist(client, token, db):
    for name in (
        "public:certificate",
        "public:certificate-verify",
        "public:certificate-pdf",
    ):
        response = client.get(reverse(name, args=[token]))
        assert response.status_code == 404
        assert "does not exist" in response.content.decode()


def test_the_number_alone_does_not_open_a_certificate(retire, client):
    certificate = retire()
    response = client.get(reverse("public:certificate", args=[certificate.number]))
    assert response.status_code == 404


def test_tokens_are_random(retire):
    tokens = {retire(quantity=1).token for _ in range(3)}
    assert len(tokens) == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL path")
def test_postgres_settlement_makes_the_certificate_in_the_same_transaction(retire):
    certificate = retire()
    assert certificate.retired_at == certificate.trade_request.reviewed_at
