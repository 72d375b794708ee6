"""The published journal heads on the public registry and in the API, no
sign-in: the list with the public key, each head's JSON, and the check of a
head someone kept against today's journal."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from tests.public.conftest import new_key
from tests.trading.tampering import guards_lifted, rehash_from
from trading import anchors, chain, services, verification
from trading.models import JournalAnchor, LedgerEntry

pytestmark = pytest.mark.django_db

PAGE = "public:journal-heads"
API_HEADS = "/api/v1/journal-heads/"


@pytest.fixture(autouse=True)
def no_reused_walks():
    """Each test sees the chain's verdict afresh (the public check may reuse it)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def published(issue, seller, seller_account, buyer_account, admin):
    """A transfer settled (entries 1-4) and the head published: its JSON."""
    issue()
    request = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=100,
        price_per_tonne="80",
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=request)
    anchor, _created = anchors.publish_head()
    return anchor.document()


def _rewrite_and_rehash():
    """Rewrite the transfer's price and recompute every hash after it, as an
    attacker with write access to the database would."""
    transfer = LedgerEntry.objects.get(kind="transfer")
    with guards_lifted():
        LedgerEntry.objects.filter(pk=transfer.pk).update(price_per_tonne=8)
        rehash_from(transfer.sequence)


def _post(client, text=None, upload=None, language="en"):
    data = {}
    if text is not None:
        data["head"] = text
    if upload is not None:
        data["head_file"] = upload
    return client.post(reverse(PAGE), data, HTTP_ACCEPT_LANGUAGE=language)


def _api_check(document, language="en"):
    return APIClient(HTTP_ACCEPT_LANGUAGE=language).post(
        API_HEADS + "check/", document, format="json"
    )


# The page ---------------------------------------------------------------------------


def test_the_page_lists_heads_with_the_public_key_to_anyone(client, published):
    response = client.get(reverse(PAGE), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    body = response.content.decode()
    assert published["entry_hash"] in body
    assert published["public_key"] in body
    assert published["key_id"] in body
    assert "BEGIN PUBLIC KEY" in body
    assert 'data-signed="true"' in body
    assert "bijie-registry-journal-head/v1" in body
    anchor = JournalAnchor.objects.get()
    assert reverse("public:journal-head-json", args=[anchor.pk]) in body
    assert reverse(PAGE) in client.get(reverse("public:search")).content.decode()


def test_the_page_is_in_chinese_for_chinese_browsers(client, published):
    body = client.get(reverse(PAGE), HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "已发布的账本链头" in body
    assert "核验" in body


def test_a_row_written_without_the_key_shows_as_not_signed(client, published):
    anchor = JournalAnchor.objects.get()
    JournalAnchor.objects.create(
        sequence=3,
        entry_hash=LedgerEntry.objects.get(sequence=3).entry_hash,
        published_at=anchor.published_at,
        key_id=anchor.key_id,
        public_key=anchor.public_key,
        signature=base64.b64encode(bytes(64)).decode(),
    )
    body = client.get(reverse(PAGE), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert body.count('data-signed="true"') == 1
    assert body.count('data-signed="false"') == 1
    rows = APIClient().get(API_HEADS).json()["results"]
    assert [(row["sequence"], row["signed_by_registry"]) for row in rows] == [
        (4, True),
        (3, False),
    ]


def test_a_valid_head_pasted_or_uploaded_checks(client, published):
    text = json.dumps(published)
    for response in (
        _post(client, text=text),
        _post(client, upload=SimpleUploadedFile("head.json", text.encode())),
    ):
        assert response.status_code == 200
        body = response.content.decode()
        assert 'data-valid="true"' in body
        assert "This head is valid" in body


def test_a_rewritten_and_rehashed_journal_fails_on_the_page_and_in_the_api(
    client, published
):
    _rewrite_and_rehash()
    response = _post(client, text=json.dumps(published))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-valid="false"' in body
    assert "the journal has been rewritten since" in body
    result = _api_check(published).json()
    assert result["valid"] is False
    assert (result["signature_valid"], result["key_trusted"]) == (True, True)
    assert (result["chain_intact"], result["contained"]) == (True, False)
    assert result["problems"] == [
        "Entry 4 of today's journal has another hash than the published one: "
        "the journal has been rewritten since."
    ]


def test_the_verdict_is_in_chinese_for_chinese_browsers(client, published):
    _rewrite_and_rehash()
    response = _post(client, text=json.dumps(published), language="zh-CN")
    assert "账本已被改写" in response.content.decode()
    assert (
        "账本已被改写" in _api_check(published, language="zh-CN").json()["problems"][0]
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"head": "not json"}, "is not valid JSON"),
        ({"head": ""}, "Paste a published head, or upload its file."),
        ({"head": "{}"}, "format"),
        ({"head": "x" * 10_001}, "at most 10000 characters"),
    ],
)
def test_bad_input_on_the_page_gets_a_clear_message(client, db, data, message):
    response = client.post(reverse(PAGE), data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not JournalAnchor.objects.exists()


def test_pasting_and_uploading_at_once_is_refused(client, published):
    response = _post(
        client,
        text=json.dumps(published),
        upload=SimpleUploadedFile("head.json", json.dumps(published).encode()),
    )
    assert response.status_code == 400
    assert "not both" in response.content.decode()


def test_an_oversized_upload_is_refused(client, db):
    response = _post(client, upload=SimpleUploadedFile("head.json", b" " * 20_000))
    assert response.status_code == 400
    assert "too big" in response.content.decode()


def test_each_head_downloads_as_published(client, published):
    anchor = JournalAnchor.objects.get()
    for url in (
        reverse("public:journal-head-json", args=[anchor.pk]),
        reverse("public:journal-head-latest"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert json.loads(response.content) == published
        assert "journal-head-4.json" in response["Content-Disposition"]
    missing = client.get(reverse("public:journal-head-json", args=[anchor.pk + 1]))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


# The API ----------------------------------------------------------------------------


def test_the_api_lists_the_heads_and_the_public_key(published):
    client = APIClient()
    (row,) = client.get(API_HEADS).json()["results"]
    assert {key: row[key] for key in published} == published
    assert row["signed_by_registry"] is True
    key = client.get(API_HEADS + "public-key/").json()
    assert key["algorithm"] == "Ed25519"
    assert (key["public_key"], key["key_id"]) == (
        published["public_key"],
        published["key_id"],
    )
    assert key["signed_message"].startswith("bijie-registry-journal-head/v1\n")


def test_the_api_check_passes_a_valid_head(published):
    response = _api_check(published)
    assert response.status_code == 200
    result = response.json()
    assert result["valid"] is True
    assert (result["sequence"], result["journal_sequence"]) == (4, 4)
    assert result["problems"] == []


def test_the_api_check_fails_a_forged_signature_and_another_key(published):
    signature = bytearray(base64.b64decode(published["signature"]))
    signature[5] ^= 0x40
    forged = {**published, "signature": base64.b64encode(signature).decode()}
    result = _api_check(forged).json()
    assert (result["valid"], result["signature_valid"]) == (False, False)

    stranger = Ed25519PrivateKey.generate()
    public = chain.public_key_bytes(stranger)
    other = {
        **published,
        "key_id": chain.key_id(public),
        "public_key": base64.b64encode(public).decode(),
        "signature": base64.b64encode(
            chain.sign_head(
                stranger,
                published["sequence"],
                published["entry_hash"],
                published["published_at"],
            )
        ).decode(),
    }
    result = _api_check(other).json()
    assert (result["signature_valid"], result["key_trusted"]) == (True, False)
    assert result["valid"] is False


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"format": "bijie-registry-journal-head/v1", "sequence": "many"},
        "a string",
    ],
)
def test_the_api_check_answers_bad_input_with_a_json_error(db, body):
    response = APIClient().post(API_HEADS + "check/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_anchor"
    assert response.json()["message"]


def test_the_api_check_changes_nothing(published):
    before = (JournalAnchor.objects.count(), LedgerEntry.objects.count())
    _api_check(published)
    assert (JournalAnchor.objects.count(), LedgerEntry.objects.count()) == before


def test_public_checks_walk_the_chain_once_per_head_and_minute(
    published, monkeypatch, seller, seller_account, buyer_account
):
    walks = []
    original = verification._chain_verdict

    def counted():
        walks.append(1)
        return original()

    monkeypatch.setattr(verification, "_chain_verdict", counted)
    for _ in range(3):
        assert _api_check(published).json()["valid"] is True
    assert len(walks) == 1
    services.request_transfer(  # a new head: the next check walks again
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=1,
        price_per_tonne="1",
        idempotency_key=new_key(),
    )
    result = _api_check(published).json()
    assert (result["valid"], result["journal_sequence"]) == (True, 5)
    assert len(walks) == 2


def _page_queries(client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(PAGE), HTTP_ACCEPT_LANGUAGE="en").status_code == 200
    return len(queries)


def test_the_heads_page_costs_the_same_queries_for_1_or_20_heads(client, published):
    """Heads are listed from one query, however many were published (extra rows
    here carry another key's fields: the page marks them unsigned)."""
    first = JournalAnchor.objects.get()
    one = _page_queries(client)
    for offset in range(1, 20):
        JournalAnchor.objects.create(
            sequence=first.sequence + offset,
            entry_hash=first.entry_hash,
            published_at=first.published_at,
            key_id=first.key_id,
            public_key=first.public_key,
            signature=first.signature,
        )
    assert JournalAnchor.objects.count() == 20
    assert _page_queries(client) == one
