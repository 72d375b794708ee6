"""The journal's hash chain: pure, no Django.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own
fields as canonical JSON (sorted keys, no spaces, integers as integers, money as
decimal strings, times as UTC ISO 8601), so any later edit of any entry, or a
removed or reordered one, breaks every hash after it.
"""

import hashlib
import json

GENESIS = "0" * 64


def canonical(payload: dict) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def entry_hash(previous_hash: str, payload: dict) -> str:
    digest = hashlib.sha256()
    digest.update(previous_hash.encode())
    digest.update(canonical(payload))
    return digest.hexdigest()
