"""Publishing the journal's head: each day (a beat task, or ``manage.py
publish_journal_head``) the registry signs the last entry's sequence and hash
with its Ed25519 key (``LEDGER_SIGNING_KEY``) and records the signed head
(``JournalAnchor``), which the public registry and the API publish with the
public key. ``trading.verification.check_anchor`` checks a head someone kept.

The database never holds the private key, so whoever can write to the database
can re-hash a rewritten journal but cannot sign a head for it; a head published
before the rewrite no longer matches. The signed bytes and the published JSON
are defined in ``trading.chain``.
"""

import base64
import binascii
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import StateConflict
from trading import chain
from trading.models import JournalAnchor, LedgerEntry


@lru_cache(maxsize=4)
def _load(text: str) -> Ed25519PrivateKey:
    return chain.load_signing_key(text)


def signing_key() -> Ed25519PrivateKey:
    try:
        return _load(settings.LEDGER_SIGNING_KEY)
    except (ValueError, TypeError, binascii.Error) as error:
        raise ImproperlyConfigured(
            "LEDGER_SIGNING_KEY is not an Ed25519 private key (PEM, or base64 "
            "of its raw 32 bytes)."
        ) from error


def registry_public_key() -> bytes:
    """The raw public key of the key that signs heads now."""
    return chain.public_key_bytes(signing_key())


def trusted_public_keys() -> dict[str, bytes]:
    """The registry's public keys by fingerprint: the current one and those
    named in LEDGER_PREVIOUS_PUBLIC_KEYS (heads they signed still check)."""
    keys = {}
    current = registry_public_key()
    keys[chain.key_id(current)] = current
    for text in settings.LEDGER_PREVIOUS_PUBLIC_KEYS:
        if not text.strip():
            continue
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                "LEDGER_PREVIOUS_PUBLIC_KEYS holds a value that is not a base64 "
                "Ed25519 public key (32 bytes)."
            )
        keys[chain.key_id(raw)] = raw
    return keys


def _rewritten(anchor: JournalAnchor) -> StateConflict:
    return StateConflict(
        _(
            "Entry %(sequence)s of the journal was published on %(published)s "
            "with another hash than it has now: the journal has been rewritten. "
            "Nothing was published; run verify_ledger."
        )
        % {
            "sequence": anchor.sequence,
            "published": chain.head_time(anchor.published_at),
        },
        code="anchor_conflict",
    )


def publish_head(*, now=None) -> tuple[JournalAnchor | None, bool]:
    """Sign and record the journal's current head; returns the anchor and
    whether it is new. Idempotent: an unchanged head (same sequence, same key)
    returns the anchor already published. None for an empty journal. Refused,
    publishing nothing, if the head does not match its own hashes or
    contradicts a head published before (a journal rewritten or cut short)."""
    last = LedgerEntry.objects.order_by("-sequence").first()
    if last is None:
        return None, False
    if chain.content_hash(last.payload()) != last.content_hash or (
        chain.link_hash(last.previous_hash, last.sequence, last.content_hash)
        != last.entry_hash
    ):
        raise StateConflict(
            _(
                "The journal's last entry (%(sequence)s) does not match its own "
                "hash. Nothing was published; run verify_ledger."
            )
            % {"sequence": last.sequence},
            code="head_broken",
        )
    later = JournalAnchor.objects.filter(sequence__gt=last.sequence).first()
    if later is not None:
        raise StateConflict(
            _(
                "The journal ends at entry %(sequence)s, but entry %(published)s "
                "was published before: the journal has been cut short. Nothing "
                "was published; run verify_ledger."
            )
            % {"sequence": last.sequence, "published": later.sequence},
            code="anchor_conflict",
        )
    key = signing_key()
    public = chain.public_key_bytes(key)
    fingerprint = chain.key_id(public)
    existing = JournalAnchor.objects.filter(
        sequence=last.sequence, key_id=fingerprint
    ).first()
    if existing is None:
        published_at = chain.head_time(now or timezone.now())
        signature = chain.sign_head(key, last.sequence, last.entry_hash, published_at)
        try:
            with transaction.atomic():
                return (
                    JournalAnchor.objects.create(
                        sequence=last.sequence,
                        entry_hash=last.entry_hash,
                        published_at=chain.parse_head_time(published_at),
                        key_id=fingerprint,
                        public_key=base64.b64encode(public).decode(),
                        signature=base64.b64encode(signature).decode(),
                    ),
                    True,
                )
        except IntegrityError:  # another publisher recorded this head first
            existing = JournalAnchor.objects.get(
                sequence=last.sequence, key_id=fingerprint
            )
    if existing.entry_hash != last.entry_hash:
        raise _rewritten(existing)
    return existing, False


def signed_by_registry(anchor: JournalAnchor, trusted: dict[str, bytes]) -> bool:
    """Whether a recorded head carries a valid signature by one of ``trusted``
    (``trusted_public_keys()``): rows written without the key show as unsigned."""
    public = trusted.get(anchor.key_id)
    if public is None or base64.b64encode(public).decode() != anchor.public_key:
        return False
    try:
        signature = base64.b64decode(anchor.signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    return chain.head_signature_valid(
        public,
        signature,
        anchor.sequence,
        anchor.entry_hash,
        chain.head_time(anchor.published_at),
    )


def public_key_info() -> dict:
    """What the registry publishes about its keys: the current one (raw,
    base64; PEM; fingerprint) and the earlier ones still trusted."""
    current = registry_public_key()
    current_id = chain.key_id(current)
    return {
        "algorithm": "Ed25519",
        "key_id": current_id,
        "public_key": base64.b64encode(current).decode(),
        "public_key_pem": chain.public_key_pem(current),
        "previous_keys": [
            {"key_id": key, "public_key": base64.b64encode(raw).decode()}
            for key, raw in trusted_public_keys().items()
            if key != current_id
        ],
        "head_format": chain.HEAD_FORMAT,
        "signed_message": chain.head_message(
            "<sequence>", "<entry_hash>", "<published_at>"
        ).decode(),
    }
