"""The journal's hash chain: pure, no Django.

Two steps, so the database can do the second: an entry's ``content_hash`` is
SHA-256 over its own fields as canonical JSON (sorted keys, no spaces, integers
as integers, money as decimal strings, times as UTC ISO 8601); its
``entry_hash`` is SHA-256 over ``"<previous hash>:<sequence>:<content hash>"``.
Any later edit of any entry, or a removed or reordered one, breaks every hash
after it. On PostgreSQL a trigger computes the link (the same formula, in
``trading/db_guards.py``), so the chain's head is locked only at the very end of
a transaction.
"""

import hashlib
import json

GENESIS = "0" * 64


def canonical(payload: dict) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def content_hash(payload: dict) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


def link_hash(previous_hash: str, sequence: int, content: str) -> str:
    return hashlib.sha256(f"{previous_hash}:{sequence}:{content}".encode()).hexdigest()
