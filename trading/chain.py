"""The journal's hash chain, and the signed heads the registry publishes: pure,
no Django.

Two steps, so PostgreSQL can do both inside the insert (trading/db_guards.py):
an entry's ``content_hash`` is SHA-256 over its own fields as canonical JSON,
and its ``entry_hash`` is SHA-256 over ``"<previous hash>:<sequence>:<content
hash>"``. Any later edit of any entry, or a removed or reordered one, breaks
every hash after it.

The canonical JSON is the text PostgreSQL prints for a ``jsonb`` object, so the
database and this module agree byte for byte: keys shorter first, then in byte
order; ``", "`` and ``": "`` as separators; integers as integers, money as
decimal strings, times as integer microseconds since 1970 (UTC).
"""

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

GENESIS = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical(payload: dict) -> bytes:
    def order(key: str) -> tuple[int, bytes]:
        return len(key.encode()), key.encode()

    members = (
        f"{json.dumps(key, ensure_ascii=False)}: "
        f"{json.dumps(payload[key], ensure_ascii=False)}"
        for key in sorted(payload, key=order)
    )
    return ("{" + ", ".join(members) + "}").encode()


def microseconds(moment: datetime) -> int:
    """Exact integer microseconds since 1970 for an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def content_hash(payload: dict) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


def link_hash(previous_hash: str, sequence: int, content: str) -> str:
    return hashlib.sha256(f"{previous_hash}:{sequence}:{content}".encode()).hexdigest()


# Published heads ----------------------------------------------------------------
#
# Each day the registry signs its journal's head (the last entry's sequence and
# hash) with its Ed25519 key and publishes it. Whoever keeps a copy can later
# check that the journal still contains that entry with that hash: rewriting
# any entry up to it changes its hash, and re-hashing needs nothing secret,
# but signing needs the key, which the database does not hold.
#
# The signature covers exactly these bytes (UTF-8, each line ending in "\n"):
#
#     bijie-registry-journal-head/v1
#     sequence=<the entry's sequence, decimal>
#     entry_hash=<its entry hash, 64 lowercase hex digits>
#     published_at=<UTC time, YYYY-MM-DDTHH:MM:SSZ>
#
# A published head is this JSON object: "format" (the first line above),
# "sequence", "entry_hash", "published_at" (as signed), "public_key" (the raw
# 32-byte Ed25519 public key, base64), "key_id" (SHA-256 of those 32 bytes,
# hex) and "signature" (64 bytes, base64).

HEAD_FORMAT = "bijie-registry-journal-head/v1"
HEAD_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def head_time(moment: datetime) -> str:
    """A published head's time: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime(HEAD_TIME_FORMAT)


def parse_head_time(text: str) -> datetime:
    """The inverse of ``head_time``; ValueError for anything else."""
    return datetime.strptime(text, HEAD_TIME_FORMAT).replace(tzinfo=UTC)


def head_message(sequence: int, entry_hash: str, published_at: str) -> bytes:
    return (
        f"{HEAD_FORMAT}\nsequence={sequence}\nentry_hash={entry_hash}\n"
        f"published_at={published_at}\n"
    ).encode()


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8; ``\\n`` escapes allowed, for
    environment files) or from base64 of its raw 32 bytes. ValueError if it is
    neither."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(
            text.replace("\\n", "\n").encode(), password=None
        )
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def public_key_pem(public_raw: bytes) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), for OpenSSL and friends."""
    return (
        Ed25519PublicKey.from_public_bytes(public_raw)
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


def sign_head(
    private_key: Ed25519PrivateKey, sequence: int, entry_hash: str, published_at: str
) -> bytes:
    return private_key.sign(head_message(sequence, entry_hash, published_at))


def head_signature_valid(
    public_raw: bytes,
    signature: bytes,
    sequence: int,
    entry_hash: str,
    published_at: str,
) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            signature, head_message(sequence, entry_hash, published_at)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
