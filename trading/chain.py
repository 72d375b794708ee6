"""The journal's hash chain: pure, no Django.

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

import hashlib
import json
from datetime import UTC, datetime, timedelta

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
