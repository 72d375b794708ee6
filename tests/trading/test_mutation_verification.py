"""The rules of a published head someone kept, pinned down where the first
mutation run (issue 14) found them untested: what ``parse_anchor`` accepts and
refuses (each refusal's field, code and exact words; the limits of length,
sequence, base64 and time), each verdict of ``check_anchor`` with its exact
words, and the public check's reuse of one walk of the chain per journal head
for a minute. The page and API are in tests/public/test_anchors.py."""

import base64
import json
import time
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import translation

from tests.trading.conftest import new_key
from tests.trading.tampering import guards_lifted, rehash_from
from trading import anchors, chain, services
from trading.models import (
    JournalAnchor,
    LedgerCheck,
    LedgerEntry,
    LedgerHead,
    TradeRequest,
)
from trading.verification import (
    MAX_ANCHOR_CHARACTERS,
    MAX_SEQUENCE,
    check_anchor,
    parse_anchor,
    verify_ledger,
)

# A key of no one's: parse_anchor checks shapes, not who signed.
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
STRANGER_PUBLIC = chain.public_key_bytes(STRANGER)
HASH = "0123456789abcdef" * 4
TIME = "2026-07-01T08:30:15Z"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _document(key=STRANGER, sequence=4, entry_hash=HASH, published_at=TIME) -> dict:
    """A head as published, signed with ``key``."""
    public = chain.public_key_bytes(key)
    return {
        "format": chain.HEAD_FORMAT,
        "sequence": sequence,
        "entry_hash": entry_hash,
        "published_at": published_at,
        "key_id": chain.key_id(public),
        "public_key": _b64(public),
        "signature": _b64(chain.sign_head(key, sequence, entry_hash, published_at)),
    }


def _refusal(data) -> ValidationError:
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        parse_anchor(data)
    return refused.value


# parse_anchor: what it accepts ----------------------------------------------------


def test_a_well_formed_head_parses_to_its_checked_values():
    document = _document()
    signature = base64.b64decode(document["signature"])
    for given in (document, json.dumps(document), json.dumps(document).encode()):
        assert parse_anchor(given) == {
            "sequence": 4,
            "entry_hash": HASH,
            "published_at": TIME,
            "key_id": chain.key_id(STRANGER_PUBLIC),
            "public_key": STRANGER_PUBLIC,
            "signature": signature,
        }


def test_the_sequence_runs_from_1_to_just_below_the_limit():
    for sequence in (1, MAX_SEQUENCE - 1):
        assert parse_anchor(_document(sequence=sequence))["sequence"] == sequence


def test_a_head_without_a_key_id_takes_its_public_keys_fingerprint():
    document = _document()
    del document["key_id"]
    assert parse_anchor(document)["key_id"] == chain.key_id(STRANGER_PUBLIC)


def test_base64_may_carry_surrounding_whitespace():
    document = _document()
    padded = {
        **document,
        "public_key": f"  {document['public_key']}\n",
        "signature": f"\t{document['signature']} ",
    }
    parsed = parse_anchor(padded)
    assert parsed["public_key"] == STRANGER_PUBLIC
    assert parsed["signature"] == base64.b64decode(document["signature"])


def test_a_text_of_exactly_the_maximum_length_is_read():
    text = json.dumps(_document())
    text += " " * (MAX_ANCHOR_CHARACTERS - len(text))
    assert len(text) == MAX_ANCHOR_CHARACTERS
    assert parse_anchor(text)["sequence"] == 4


# parse_anchor: what it refuses, as a whole ------------------------------------------

NOT_AN_OBJECT = (
    "A published head is a JSON object with sequence, entry_hash, "
    "published_at, public_key and signature."
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "The head is not UTF-8 text."),
        (
            json.dumps(_document()) + " " * MAX_ANCHOR_CHARACTERS,
            "A published head is a short JSON object; this is too long.",
        ),
        ("not json", "The head is not valid JSON: paste it exactly as published."),
        (
            b"{'sequence': 4}",
            "The head is not valid JSON: paste it exactly as published.",
        ),
        # Nested deeper than the parser recurses, yet short enough to be read.
        (
            "[" * 4000 + "]" * 4000,
            "The head is not valid JSON: paste it exactly as published.",
        ),
        ("[1, 2]", NOT_AN_OBJECT),
        ('"a head"', NOT_AN_OBJECT),
        (4, NOT_AN_OBJECT),
        (None, NOT_AN_OBJECT),
        ([_document()], NOT_AN_OBJECT),
    ],
)
def test_input_that_is_not_a_head_object_is_refused_as_a_whole(data, message):
    error = _refusal(data)
    assert not hasattr(error, "error_dict")  # tied to no field
    assert error.messages == [message]
    assert error.code == "invalid_anchor"


def test_one_character_over_the_maximum_is_too_long():
    text = json.dumps(_document())
    text += " " * (MAX_ANCHOR_CHARACTERS + 1 - len(text))
    assert _refusal(text).messages == [
        "A published head is a short JSON object; this is too long."
    ]


# parse_anchor: what it refuses, field by field ---------------------------------------

FORMAT = (
    "This is not a journal head published by this registry (format "
    "bijie-registry-journal-head/v1 expected)."
)
SEQUENCE = "The sequence must be a whole number of at least 1."
ENTRY_HASH = "The entry hash must be 64 lowercase hexadecimal digits."
PUBLISHED_AT = "The publication time must look like 2026-07-01T00:00:00Z."
PUBLIC_KEY = "The public key must be 32 bytes in base64."
SIGNATURE = "The signature must be 64 bytes in base64."
KEY_ID = "The key fingerprint does not belong to the public key."

_PUBLIC = _document()["public_key"]
_SIGNATURE = _document()["signature"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"format": None}, "format", FORMAT),
        ({"format": "bijie-registry-journal-head/v2"}, "format", FORMAT),
        ({"sequence": None}, "sequence", SEQUENCE),
        ({"sequence": True}, "sequence", SEQUENCE),
        ({"sequence": 0}, "sequence", SEQUENCE),
        ({"sequence": -1}, "sequence", SEQUENCE),
        ({"sequence": 4.0}, "sequence", SEQUENCE),
        ({"sequence": "4"}, "sequence", SEQUENCE),
        ({"sequence": MAX_SEQUENCE}, "sequence", SEQUENCE),
        ({"entry_hash": None}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": HASH.upper()}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": HASH[:63]}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": HASH + "0"}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": "g" * 64}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": HASH + "\n"}, "entry_hash", ENTRY_HASH),
        ({"entry_hash": "\n" + HASH}, "entry_hash", ENTRY_HASH),
        ({"published_at": None}, "published_at", PUBLISHED_AT),
        ({"published_at": "2026-07-01 08:30"}, "published_at", PUBLISHED_AT),
        ({"published_at": "2026-07-01T08:30:15+00:00"}, "published_at", PUBLISHED_AT),
        ({"published_at": "2026-02-30T08:30:15Z"}, "published_at", PUBLISHED_AT),
        ({"public_key": None}, "public_key", PUBLIC_KEY),
        ({"public_key": 32}, "public_key", PUBLIC_KEY),
        ({"public_key": "not base64!"}, "public_key", PUBLIC_KEY),
        # Characters outside the alphabet are refused, not skipped.
        ({"public_key": _PUBLIC[:20] + "*" + _PUBLIC[20:]}, "public_key", PUBLIC_KEY),
        ({"public_key": _PUBLIC[:20] + "\n" + _PUBLIC[20:]}, "public_key", PUBLIC_KEY),
        ({"public_key": _b64(bytes(31))}, "public_key", PUBLIC_KEY),
        ({"public_key": _b64(bytes(33))}, "public_key", PUBLIC_KEY),
        ({"signature": None}, "signature", SIGNATURE),
        (
            {"signature": _SIGNATURE[:40] + "*" + _SIGNATURE[40:]},
            "signature",
            SIGNATURE,
        ),
        ({"signature": _b64(bytes(63))}, "signature", SIGNATURE),
        ({"signature": _b64(bytes(65))}, "signature", SIGNATURE),
        ({"key_id": None}, "key_id", KEY_ID),
        ({"key_id": "0" * 64}, "key_id", KEY_ID),
        ({"key_id": chain.key_id(STRANGER_PUBLIC).upper()}, "key_id", KEY_ID),
    ],
)
def test_each_malformed_field_is_refused_with_its_own_words(change, field, message):
    error = _refusal({**_document(), **change})
    assert error.message_dict == {field: [message]}
    assert error.code == "invalid_anchor"
    assert [e.code for e in error.error_dict[field]] == ["invalid_anchor"]


def test_the_fields_are_checked_in_the_order_published():
    """A head wrong everywhere is refused for its first field."""
    wrong = {
        "format": chain.HEAD_FORMAT,
        "sequence": 0,
        "entry_hash": "x",
        "published_at": "x",
        "public_key": "x",
        "signature": "x",
        "key_id": "x",
    }
    order = ["sequence", "entry_hash", "published_at", "public_key", "signature"]
    good = _document()
    for position, field in enumerate(order):
        document = {**wrong, **{name: good[name] for name in order[:position]}}
        assert list(_refusal(document).message_dict) == [field]


# check_anchor: each verdict, in its exact words ---------------------------------------


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


@pytest.fixture
def published(traded) -> dict:
    anchor, created = anchors.publish_head()
    assert created
    return anchor.document()


@pytest.fixture
def fresh_cache():
    """A cache of this test's own, empty, for the walk the public check reuses."""
    location = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "test-mutation-verification",
        }
    }
    with override_settings(CACHES=location):
        cache.clear()
        yield
        cache.clear()


def _check(document, **options):
    with translation.override("en"):
        return check_anchor(document, **options)


def _break_entry_3_without_rehashing():
    """Entry 3's contents change; its hashes, and the head, stay as they were."""
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=3).update(price_per_tonne=1)


@pytest.mark.django_db
def test_a_valid_head_reports_what_it_checked(published):
    check = _check(published)
    assert (check.sequence, check.entry_hash) == (4, published["entry_hash"])
    assert (check.published_at, check.key_id) == (
        published["published_at"],
        published["key_id"],
    )
    assert (check.signature_valid, check.key_trusted) == (True, True)
    assert (check.contained, check.chain_intact) == (True, True)
    assert check.journal_sequence == 4
    assert check.problems == [] and check.valid


@pytest.mark.django_db
def test_a_head_signed_with_a_key_the_registry_does_not_hold(traded):
    head = LedgerEntry.objects.get(sequence=4)
    document = _document(entry_hash=head.entry_hash)
    check = _check(document)
    assert (check.signature_valid, check.contained, check.chain_intact) == (
        True,
        True,
        True,
    )
    assert not check.key_trusted
    assert check.problems == [
        "It was not signed with the registry's key (its key fingerprint is "
        f"{chain.key_id(STRANGER_PUBLIC)})."
    ]


@pytest.mark.django_db
def test_a_head_whose_signature_does_not_match_it(published):
    altered = {**published, "published_at": "2026-07-02T00:00:00Z"}
    check = _check(altered)
    assert check.key_trusted and check.contained and not check.signature_valid
    assert check.problems == [
        "Its signature does not match it: the head was altered, or signed "
        "with another key."
    ]


@pytest.mark.django_db
def test_a_head_of_a_rewritten_and_rehashed_journal(published):
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).update(price_per_tonne=8)
        rehash_from(4)
    check = _check(published)
    assert check.chain_intact and not check.contained
    assert check.problems == [
        "Entry 4 of today's journal has another hash than the published one: "
        "the journal has been rewritten since."
    ]


@pytest.mark.django_db
def test_a_head_of_a_journal_edited_without_rehashing(published):
    _break_entry_3_without_rehashing()
    check = _check(published)
    assert check.contained and not check.chain_intact
    assert check.problems == [
        "Today's journal does not verify from entry 3 on: its hashes do not "
        "recompute or link."
    ]


@pytest.mark.django_db
def test_a_head_of_a_journal_cut_short(published):
    """The last entry gone, what is left still chaining: the head row still
    remembers entry 4."""
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).delete()
    assert LedgerHead.objects.get().last_sequence == 4
    check = _check(published)
    assert not check.contained and not check.chain_intact
    assert check.journal_sequence == 3
    assert check.problems == [
        "Today's journal has no entry 4: it ends at entry 3.",
        "Today's journal ends before the last entry the registry recorded: it has "
        "been cut short.",
    ]


def test_a_head_checked_against_an_empty_journal(db):
    document = _document(key=anchors.signing_key(), sequence=1)
    check = _check(document)
    assert check.signature_valid and check.key_trusted and check.chain_intact
    assert check.journal_sequence == 0
    assert check.problems == ["Today's journal has no entry 1: it ends at entry 0."]


# check_anchor: one walk of the chain per journal head, for a minute -------------------


@pytest.mark.django_db
def test_the_public_check_reuses_the_walk_but_the_command_line_walks_afresh(
    published, fresh_cache
):
    assert _check(published, reuse_walk=True).chain_intact
    _break_entry_3_without_rehashing()  # the head is unchanged
    # Within the minute the public check keeps the verdict for this head ...
    assert _check(published, reuse_walk=True).chain_intact
    # ... while the command line (the default) always walks the chain itself.
    assert not _check(published).chain_intact
    assert not _check(published, reuse_walk=False).chain_intact


@pytest.mark.django_db
def test_a_new_journal_head_is_walked_at_once(
    published, fresh_cache, seller, seller_account, buyer_account
):
    assert _check(published, reuse_walk=True).journal_sequence == 4
    services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=1,
        price_per_tonne="1",
        idempotency_key=new_key(),
    )
    assert _check(published, reuse_walk=True).journal_sequence == 5


@pytest.mark.django_db
def test_a_reused_walk_expires_after_a_minute(published, fresh_cache, monkeypatch):
    from django.core.cache.backends import locmem

    assert _check(published, reuse_walk=True).chain_intact
    _break_entry_3_without_rehashing()
    started = time.time()

    def later(seconds):
        monkeypatch.setattr(
            locmem, "time", SimpleNamespace(time=lambda: started + seconds)
        )

    later(59)
    assert _check(published, reuse_walk=True).chain_intact
    later(61)
    assert not _check(published, reuse_walk=True).chain_intact


# verify_ledger: each violation, in its exact shape -----------------------------------


def _by_check(report) -> dict[str, list[dict]]:
    found = {}
    for violation in report.violations:
        found.setdefault(violation["check"], []).append(violation)
    return found


def _delete_batches(*batches):
    """Batch rows gone, their blocks and entries left behind (the foreign keys
    are checked at commit, which a test never reaches)."""
    with guards_lifted() as cursor:
        for batch in batches:
            cursor.execute("DELETE FROM registry_creditbatch WHERE id = %s", [batch.pk])


@pytest.mark.django_db
def test_the_audit_counts_batches_blocks_and_entries_of_a_clean_ledger(issue):
    """Each batch read with its own blocks and entries: two batches, counted
    once each."""
    issue()
    issue()
    report = verify_ledger(record=False)
    assert report.violations == []
    assert (report.batches, report.blocks, report.entries) == (2, 4, 4)
    assert report.issued == 2000


@pytest.mark.django_db
def test_lost_credits_are_reported_by_batch_with_what_is_missing(issue):
    batch = issue()  # seller 1-900, buffer pool 901-1000
    with guards_lifted() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET last_serial = 899, quantity = 899 "
            "WHERE batch_id = %s AND first_serial = 1",
            [batch.pk],
        )
    found = _by_check(verify_ledger(record=False))
    assert found["conservation"] == [
        {"check": "conservation", "batch": batch.pk, "issued": 1000, "in_blocks": 999}
    ]
    assert found["tiling"] == [
        {"check": "tiling", "batch": batch.pk, "gaps": [(900, 900)], "overlaps": []}
    ]


@pytest.mark.django_db
def test_overlapping_blocks_are_reported_as_overlaps(issue):
    batch = issue()
    with guards_lifted() as cursor:
        if connection.vendor == "postgresql":
            # The exclusion constraint refuses overlaps outright; the check is
            # what still sees them where the constraint was dropped (rolled back
            # with the test).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks
            cursor.execute(
                "ALTER TABLE trading_creditblock "
                "DROP CONSTRAINT trading_block_no_overlap"
            )
        cursor.execute(
            "UPDATE trading_creditblock SET first_serial = 891, quantity = 110 "
            "WHERE batch_id = %s AND first_serial = 901",
            [batch.pk],
        )
    (tiling,) = _by_check(verify_ledger(record=False))["tiling"]
    assert tiling == {
        "check": "tiling",
        "batch": batch.pk,
        "gaps": [],
        "overlaps": [(891, 900)],
    }


@pytest.mark.django_db
def test_blocks_and_entries_of_batches_that_do_not_exist_are_counted(issue):
    first, second, third, fourth = issue(), issue(), issue(), issue()
    _delete_batches(first, third, fourth)
    with guards_lifted() as cursor:
        cursor.execute(
            "DELETE FROM trading_creditblock WHERE batch_id = %s", [second.pk]
        )
    report = verify_ledger(record=False)
    found = _by_check(report)
    # Two blocks and two entries (issue, buffer) of each batch deleted.
    assert found["orphans"] == [
        {"check": "orphans", "blocks": 6, "problem": "no such batch"},
        {"check": "orphans", "entries": 6, "problem": "no such batch"},
    ]
    assert report.batches == 1
    assert found["conservation"] == [
        {"check": "conservation", "batch": second.pk, "issued": 1000, "in_blocks": 0}
    ]
    # The test database checks its foreign keys before rolling back.
    with guards_lifted() as cursor:
        for table in ("trading_creditblock", "trading_ledgerentry"):
            cursor.execute(
                f"DELETE FROM {table} WHERE batch_id IN (%s, %s, %s)",
                [first.pk, third.pk, fourth.pk],
            )


@pytest.mark.django_db
def test_blocks_of_an_account_that_does_not_exist_name_it_by_its_id(issue):
    batch = issue()  # seller 1-900, buffer pool 901-1000
    seller_block = batch.blocks.get(first_serial=1)
    with guards_lifted() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET account_id = 999999 WHERE id = %s",
            [seller_block.pk],
        )
    found = _by_check(verify_ledger(record=False))
    seller_number = seller_block.account.number
    assert {
        (v["account"], v["batch"], v["state"], v["expected"], v["found"])
        for v in found["holding"]
    } == {
        (seller_number, batch.pk, "active", 900, 0),
        ("#999999", batch.pk, "active", 0, 900),
    }
    assert found["serials"] == [
        {
            "check": "serials",
            "batch": batch.pk,
            "first_serial": 1,
            "last_serial": 900,
            "tonnes": 900,
            "expected": {"account": seller_number, "state": "active"},
            "found": {"account": "#999999", "state": "active"},
        }
    ]
    with guards_lifted() as cursor:  # foreign keys are checked before rollback
        cursor.execute(
            "UPDATE trading_creditblock SET account_id = %s WHERE id = %s",
            [seller_block.account_id, seller_block.pk],
        )


def _insert_entry(batch, **fields):
    """An entry appended to the journal and linked into its chain."""
    last = LedgerEntry.objects.order_by("-sequence").first()
    with guards_lifted():
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    sequence=last.sequence + 1,
                    batch=batch,
                    created_at=last.created_at,
                    actor=last.actor,
                    content_hash="x",
                    previous_hash="x",
                    entry_hash=f"inserted-{last.sequence + 1}",
                    **fields,
                )
            ]
        )
        rehash_from(last.sequence + 1)
    return last.sequence + 1


@pytest.mark.django_db
def test_journal_missteps_name_their_entry_batch_and_serials(
    issue, seller_account, buyer_account
):
    batch = issue()  # entries 1-2; seller 1-900, buffer pool 901-1000
    transfer = _insert_entry(
        batch,
        kind="transfer",
        first_serial=1,
        last_serial=50,
        quantity=50,
        from_account=seller_account,
        to_account=buyer_account,
    )
    unknown = _insert_entry(
        batch,
        kind="teleport",
        first_serial=1,
        last_serial=1,
        quantity=1,
        from_account=seller_account,
        to_account=buyer_account,
    )
    found = _by_check(verify_ledger(record=False))
    assert "hash_chain" not in found
    assert found["journal"] == [
        {
            "check": "journal",
            "sequence": transfer,
            "kind": "transfer",
            "batch": batch.pk,
            "first_serial": 1,
            "last_serial": 50,
            "tonnes": 50,
            "moves_from": {"account": seller_account.number, "state": "reserved"},
            "journal_had_them_at": {
                "account": seller_account.number,
                "state": "active",
            },
        },
        {
            "check": "journal",
            "sequence": unknown,
            "kind": "teleport",
            "batch": batch.pk,
            "first_serial": 1,
            "last_serial": 1,
            "problem": "unknown kind or empty range",
        },
    ]


@pytest.mark.django_db
def test_the_journal_is_replayed_in_sequence_order(traded):
    """Entries 3 (reserve) and 4 (transfer) swapped and re-hashed: the chain
    verifies, but replayed in its order the journal transfers before it
    reserves."""
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=3).update(sequence=1000)
        LedgerEntry.objects.filter(sequence=4).update(sequence=3)
        LedgerEntry.objects.filter(sequence=1000).update(sequence=4)
        rehash_from(3)
    found = _by_check(verify_ledger(record=False))
    assert "hash_chain" not in found
    assert [(v["sequence"], v["kind"]) for v in found["journal"]] == [
        (3, "transfer"),
        (4, "reserve"),
    ]


@pytest.mark.django_db
def test_reserved_credits_of_a_settled_request_are_reported(
    issue, seller, seller_account, buyer_account
):
    issue()
    request = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=100,
        price_per_tonne="80",
        idempotency_key=new_key(),
    )
    assert verify_ledger(record=False).ok
    TradeRequest.objects.filter(pk=request.pk).update(
        status=TradeRequest.Status.REJECTED
    )
    found = _by_check(verify_ledger(record=False))
    assert found["reservation"] == [
        {"check": "reservation", "request": request.pk, "blocks": 1}
    ]


# verify_ledger: the hash chain and the registry's own published heads --------------


@pytest.mark.django_db
def test_an_entry_edited_without_rehashing_is_reported_with_its_problem(traded):
    _break_entry_3_without_rehashing()
    assert _by_check(verify_ledger(record=False))["hash_chain"] == [
        {
            "check": "hash_chain",
            "sequence": 3,
            "problems": ["its content hash does not match its contents"],
        }
    ]


@pytest.mark.django_db
def test_an_entry_whose_hash_was_replaced_breaks_its_link_and_the_next(traded):
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=3).update(entry_hash="f" * 64)
    assert _by_check(verify_ledger(record=False))["hash_chain"] == [
        {
            "check": "hash_chain",
            "sequence": 3,
            "problems": ["its hash does not match its link"],
        },
        {
            "check": "hash_chain",
            "sequence": 4,
            "problems": ["does not link to the entry before"],
        },
    ]


@pytest.mark.django_db
def test_a_hole_in_the_sequence_is_reported(traded):
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=3).delete()
    hash_chain = _by_check(verify_ledger(record=False))["hash_chain"]
    assert hash_chain == [
        {
            "check": "hash_chain",
            "sequence": 4,
            "problems": ["sequence 4, expected 3", "does not link to the entry before"],
        }
    ]


@pytest.mark.django_db
def test_a_journal_cut_short_behind_its_head_row_is_reported(traded):
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).delete()
    assert _by_check(verify_ledger(record=False))["hash_chain"] == [
        {
            "check": "hash_chain",
            "sequence": 4,
            "problems": ["the journal ends before the head's last entry"],
        }
    ]


@pytest.mark.django_db
def test_an_emptied_journal_with_its_head_rewound_chains(traded):
    """Nothing left to chain and the head row back at the start: the chain
    has nothing to say (the replay does)."""
    with guards_lifted():
        LedgerEntry.objects.all().delete()
        rehash_from(1)
    assert LedgerHead.objects.get().last_sequence == 0
    found = _by_check(verify_ledger(record=False))
    assert "hash_chain" not in found
    assert "holding" in found


@pytest.mark.django_db
def test_recorded_heads_are_reported_in_sequence_order_with_their_problems(traded):
    anchor, _created = anchors.publish_head()  # entry 4
    JournalAnchor.objects.filter(pk=anchor.pk).update(key_id="0" * 64)
    unsigned = JournalAnchor.objects.create(
        sequence=3,
        entry_hash=LedgerEntry.objects.get(sequence=3).entry_hash,
        published_at=anchor.published_at,
        key_id=anchor.key_id,
        public_key=anchor.public_key,
        signature=_b64(bytes(64)),
    )
    assert unsigned.pk > anchor.pk
    with guards_lifted():
        LedgerEntry.objects.filter(sequence=4).delete()
        rehash_from(4)
    published_at = chain.head_time(anchor.published_at)
    assert _by_check(verify_ledger(record=False))["published_head"] == [
        {
            "check": "published_head",
            "sequence": 3,
            "published_at": published_at,
            "problems": ["its signature does not match it"],
        },
        {
            "check": "published_head",
            "sequence": 4,
            "published_at": published_at,
            "problems": [
                "not signed by one of the registry's keys",
                "the journal has no entry at its sequence",
            ],
        },
    ]


@pytest.mark.django_db
def test_the_recorded_check_keeps_the_summary_and_the_violations(issue):
    batch = issue()
    with guards_lifted() as cursor:
        cursor.execute(
            "UPDATE trading_creditblock SET last_serial = 899, quantity = 899 "
            "WHERE batch_id = %s AND first_serial = 1",
            [batch.pk],
        )
    report = verify_ledger()
    recorded = LedgerCheck.objects.latest("ran_at")
    assert recorded.ok is False
    assert recorded.summary == json.loads(json.dumps(report.summary()))
    assert recorded.violations == json.loads(json.dumps(report.violations))


@pytest.mark.django_db
def test_orphans_before_a_batch_are_all_counted_though_nothing_follows(issue):
    first, second, third = issue(), issue(), issue()
    _delete_batches(first, second)
    with guards_lifted() as cursor:
        cursor.execute(
            "DELETE FROM trading_creditblock WHERE batch_id = %s", [third.pk]
        )
    found = _by_check(verify_ledger(record=False))
    assert found["orphans"] == [
        {"check": "orphans", "blocks": 4, "problem": "no such batch"},
        {"check": "orphans", "entries": 4, "problem": "no such batch"},
    ]
    with guards_lifted() as cursor:  # foreign keys are checked before rollback
        for table in ("trading_creditblock", "trading_ledgerentry"):
            cursor.execute(
                f"DELETE FROM {table} WHERE batch_id IN (%s, %s)",
                [first.pk, second.pk],
            )


@pytest.mark.django_db
def test_a_recorded_check_keeps_its_first_thousand_violations(traded):
    last = LedgerEntry.objects.get(sequence=4)
    with guards_lifted():
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    sequence=sequence,
                    kind="teleport",
                    batch_id=last.batch_id,
                    first_serial=1,
                    last_serial=1,
                    quantity=1,
                    from_account_id=last.from_account_id,
                    to_account_id=last.to_account_id,
                    actor=last.actor,
                    created_at=last.created_at,
                    content_hash="x",
                    previous_hash="x",
                    entry_hash=f"forged-{sequence}",
                )
                for sequence in range(5, 1006)
            ]
        )
    report = verify_ledger()
    assert len(report.violations) > 1000
    recorded = LedgerCheck.objects.latest("ran_at")
    assert len(recorded.violations) == 1000
    assert recorded.violations == json.loads(json.dumps(report.violations[:1000]))
