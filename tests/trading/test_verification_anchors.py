"""Published, signed journal heads (issue 13, "an anchored chain"): the registry
signs its head, and a head anyone kept shows whether today's journal still
contains it, through ``verify_ledger --anchor``. The public page and the API
are in tests/public/test_anchors.py."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from config.celery import app as celery_app
from tests.test_deployment import PRODUCTION_ENV, _manage
from tests.trading.conftest import new_key
from tests.trading.tampering import guards_lifted, rehash_from
from trading import anchors, chain, services
from trading.models import JournalAnchor, LedgerEntry, LedgerHead
from trading.tasks import publish_journal_head_task
from trading.verification import check_anchor, parse_anchor, verify_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def traded(issue, seller, seller_account, buyer_account, admin):
    """A batch issued and 100 t transferred: entries 1-4."""
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
    assert LedgerEntry.objects.count() == 4


def _kept(tmp_path, document: dict, name="head.json"):
    """A head as someone saved it."""
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def _published(tmp_path) -> tuple[JournalAnchor, str]:
    anchor, created = anchors.publish_head()
    assert created
    return anchor, _kept(tmp_path, anchor.document())


def _rewrite_price_and_rehash(sequence: int) -> None:
    """The attacker's edit: the transfer's price, which moves no credits (so
    the replay cannot see it), with every hash after it recomputed."""
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=sequence).update(price_per_tonne=8)
        rehash_from(sequence)


# The signed bytes ---------------------------------------------------------------


def test_the_signature_covers_the_documented_bytes_and_verifies_outside_the_registry(
    traded,
):
    anchor, _created = anchors.publish_head(
        now=datetime(2026, 7, 1, 8, 30, 15, 999, tzinfo=UTC)
    )
    document = anchor.document()
    head = LedgerEntry.objects.get(sequence=4)
    assert (document["sequence"], document["entry_hash"]) == (4, head.entry_hash)
    assert document["published_at"] == "2026-07-01T08:30:15Z"
    message = (
        "bijie-registry-journal-head/v1\n"
        "sequence=4\n"
        f"entry_hash={head.entry_hash}\n"
        "published_at=2026-07-01T08:30:15Z\n"
    ).encode()
    # What anyone can do with the JSON and a stock Ed25519 library.
    public = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(document["public_key"])
    )
    public.verify(base64.b64decode(document["signature"]), message)  # raises if not
    expected_key = chain.load_signing_key(settings.LEDGER_SIGNING_KEY)
    assert (
        document["public_key"]
        == base64.b64encode(chain.public_key_bytes(expected_key)).decode()
    )
    assert document["key_id"] == chain.key_id(base64.b64decode(document["public_key"]))


def test_the_signing_key_may_be_given_as_pem():
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for text in (pem, pem.replace("\n", "\\n")):
        loaded = chain.load_signing_key(text)
        assert chain.public_key_bytes(loaded) == chain.public_key_bytes(key)
    with pytest.raises(ValueError):
        chain.load_signing_key(base64.b64encode(b"short").decode())


# Publishing -----------------------------------------------------------------------


def test_publishing_is_idempotent_per_head(
    traded, seller, seller_account, buyer_account
):
    first, created = anchors.publish_head()
    assert created and first.sequence == 4
    again, created = anchors.publish_head()
    assert (again.pk, created) == (first.pk, False)
    assert JournalAnchor.objects.count() == 1
    services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=1,
        price_per_tonne="1",
        idempotency_key=new_key(),
    )
    later, created = anchors.publish_head()
    assert created and later.sequence == 5
    assert JournalAnchor.objects.count() == 2


def test_an_empty_journal_publishes_nothing():
    assert anchors.publish_head() == (None, False)
    assert not JournalAnchor.objects.exists()


def test_the_daily_task_publishes_and_is_scheduled(traded):
    assert publish_journal_head_task.delay().get() == 4
    assert publish_journal_head_task.delay().get() == 4  # delivered twice: once
    assert JournalAnchor.objects.count() == 1
    schedule = celery_app.conf.beat_schedule["publish-journal-head-daily"]
    assert schedule["task"] == "trading.tasks.publish_journal_head_task"


def test_the_command_prints_the_head_as_published(traded, capsys):
    call_command("publish_journal_head")
    printed = json.loads(capsys.readouterr().out)
    assert printed == JournalAnchor.objects.get().document()


def test_publishing_over_a_rewritten_head_is_refused(traded):
    anchors.publish_head()
    _rewrite_price_and_rehash(4)
    with pytest.raises(ValidationError) as refused:
        anchors.publish_head()
    assert refused.value.code == "anchor_conflict"
    assert JournalAnchor.objects.count() == 1
    with pytest.raises(CommandError, match="rewritten"):
        call_command("publish_journal_head")


def test_publishing_a_journal_cut_short_is_refused(traded):
    anchors.publish_head()
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).delete()
        rehash_from(4)  # the head row steps back to entry 3
    with pytest.raises(ValidationError, match="cut short"):
        anchors.publish_head()
    assert JournalAnchor.objects.count() == 1


# Checking a kept head: verify_ledger --anchor ---------------------------------------


def test_a_valid_head_passes(traded, tmp_path, capsys, seller, seller_account):
    _anchor, path = _published(tmp_path)
    # The journal grows afterwards: still contained.
    services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=5,
        beneficiary="某公司",
        purpose="voluntary",
        reporting_year=2026,
        idempotency_key=new_key(),
    )
    call_command("verify_ledger", anchor=[path])
    out = capsys.readouterr().out
    assert "validly signed" in out and "now 5 entries" in out
    check = check_anchor(Path(path).read_text())
    assert check.valid and check.contained and check.chain_intact
    assert check.signature_valid and check.key_trusted


def test_a_rewritten_and_rehashed_journal_passes_the_chain_but_fails_the_anchor(
    traded, tmp_path, capsys
):
    _anchor, path = _published(tmp_path)
    transfer = LedgerEntry.objects.get(kind="transfer")
    _rewrite_price_and_rehash(transfer.sequence)
    # What an attacker who also removes the registry's own record leaves: the
    # plain audit has nothing to say ...
    JournalAnchor.objects.all().delete()
    report = verify_ledger(record=False)
    assert report.ok, report.violations
    call_command("verify_ledger")
    # ... but a head kept from before the rewrite no longer checks.
    with pytest.raises(CommandError, match="1 of 1 published head"):
        call_command("verify_ledger", anchor=[path])
    errors = capsys.readouterr().err
    assert "FAILS" in errors and "has been rewritten" in errors
    check = check_anchor(Path(path).read_text())
    assert check.signature_valid and check.key_trusted and check.chain_intact
    assert not check.contained


def test_the_audit_checks_the_registrys_own_published_heads(traded):
    anchors.publish_head()
    assert verify_ledger(record=False).ok
    _rewrite_price_and_rehash(4)
    checks = [v for v in verify_ledger(record=False).violations]
    assert [(v["check"], v["sequence"]) for v in checks] == [("published_head", 4)]
    assert checks[0]["problems"] == [
        "the journal's entry at its sequence has another hash"
    ]


def test_a_recorded_head_not_signed_by_the_registry_is_a_violation(traded):
    anchor, _created = anchors.publish_head()
    JournalAnchor.objects.filter(pk=anchor.pk).update(
        signature=base64.b64encode(bytes(64)).decode()
    )
    (violation,) = verify_ledger(record=False).violations
    assert violation["problems"] == ["its signature does not match it"]


def test_a_forged_signature_fails(traded, tmp_path):
    anchor, _path = _published(tmp_path)
    signature = bytearray(base64.b64decode(anchor.signature))
    signature[0] ^= 1
    forged = {**anchor.document(), "signature": base64.b64encode(signature).decode()}
    with pytest.raises(CommandError):
        call_command("verify_ledger", anchor=[_kept(tmp_path, forged, "forged.json")])
    check = check_anchor(forged)
    assert not check.signature_valid and check.contained
    assert not check.valid
    # The right signature on another hash fails the same way.
    other = {**anchor.document(), "entry_hash": "0" * 64}
    assert not check_anchor(other).signature_valid


def test_a_head_signed_with_another_key_fails_unless_the_registry_trusts_it(
    traded, tmp_path, settings
):
    head = LedgerEntry.objects.get(sequence=4)
    stranger = Ed25519PrivateKey.generate()
    public = chain.public_key_bytes(stranger)
    published_at = "2026-07-01T00:00:00Z"
    document = {
        "format": chain.HEAD_FORMAT,
        "sequence": 4,
        "entry_hash": head.entry_hash,
        "published_at": published_at,
        "key_id": chain.key_id(public),
        "public_key": base64.b64encode(public).decode(),
        "signature": base64.b64encode(
            chain.sign_head(stranger, 4, head.entry_hash, published_at)
        ).decode(),
    }
    with pytest.raises(CommandError):
        call_command("verify_ledger", anchor=[_kept(tmp_path, document)])
    check = check_anchor(document)
    assert check.signature_valid and check.contained and not check.key_trusted
    assert "not signed with the registry's key" in check.problems[0]
    # An earlier key of the registry's, named in the settings, still counts.
    settings.LEDGER_PREVIOUS_PUBLIC_KEYS = [document["public_key"]]
    assert check_anchor(document).valid


def test_contents_edited_without_rehashing_fail_the_anchor_too(traded, tmp_path):
    _anchor, path = _published(tmp_path)
    with guards_lifted():  # entry 4 keeps its stored hash; entry 3 is changed
        LedgerEntry.objects.filter(sequence=3).update(price_per_tonne=1)
    check = check_anchor(Path(path).read_text())
    assert check.contained and not check.chain_intact
    assert "does not verify from entry 3" in check.problems[0]
    with pytest.raises(CommandError):
        call_command("verify_ledger", anchor=[path])


def test_a_head_beyond_a_journal_cut_short_fails(traded, tmp_path):
    _anchor, path = _published(tmp_path)
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).delete()
        rehash_from(4)
    assert LedgerHead.objects.get().last_sequence == 3
    check = check_anchor(Path(path).read_text())
    assert not check.valid
    assert "has no entry 4: it ends at entry 3" in check.problems[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "is a JSON object"),
        (b'{"format": "other/v1"}', "format"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_published_head_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("verify_ledger", anchor=[str(path)])


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot read it"):
        call_command("verify_ledger", anchor=[str(tmp_path / "nowhere.json")])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sequence": True}, "sequence"),
        ({"sequence": 0}, "sequence"),
        ({"sequence": "4"}, "sequence"),
        ({"entry_hash": "A" * 64}, "entry_hash"),
        ({"published_at": "2026-07-01 00:00"}, "published_at"),
        ({"public_key": "not base64!"}, "public_key"),
        ({"signature": base64.b64encode(bytes(10)).decode()}, "signature"),
        ({"key_id": "0" * 64}, "key_id"),
    ],
)
def test_every_malformed_field_is_named(traded, change, field):
    anchor, _created = anchors.publish_head()
    with pytest.raises(ValidationError) as refused:
        parse_anchor({**anchor.document(), **change})
    assert list(refused.value.message_dict) == [field]


# Settings -------------------------------------------------------------------------


def test_production_settings_require_a_signing_key_of_their_own():
    without = {k: v for k, v in PRODUCTION_ENV.items() if k != "LEDGER_SIGNING_KEY"}
    result = _manage("check", env_overrides=without)
    assert result.returncode != 0 and "LEDGER_SIGNING_KEY" in result.stderr
    development = {
        **without,
        "LEDGER_SIGNING_KEY": settings.DEVELOPMENT_LEDGER_SIGNING_KEY,
    }
    result = _manage("check", env_overrides=development)
    assert result.returncode != 0 and "development key" in result.stderr
    own = base64.b64encode(bytes(range(32))).decode()
    result = _manage("check", env_overrides={**without, "LEDGER_SIGNING_KEY": own})
    assert result.returncode == 0, result.stderr
