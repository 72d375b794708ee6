"""The input fingerprint of an estimate: a SHA-256 over everything its numbers
rest on (boundary, land-cover file, class mapping, methodology, period, price,
engine), from plain values. No Django here: a run (``estimation.services.runs``)
and the command line (``manage.py estimate``) both come through
``estimate_inputs``, so the same inputs give the same fingerprint.

The canonical form is that of the runs already stored: changing it would make
every stored fingerprint differ from a recomputed one, and nothing verified
could be issued. Bump ``ENGINE_VERSION`` instead when the area engine or the
arithmetic changes a result.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from common.quantities import money

# Part of every fingerprint: bump it when a change to the area engine or the
# arithmetic can change a result.
ENGINE_VERSION = "2026.11-1"
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LandCoverInputs:
    """A land-cover map as far as the numbers go: its bytes (by hash), how it
    is read and how its classes map to ecosystems."""

    sha256: str
    kind: str
    class_field: str
    scheme: str
    mapping: Mapping[str, str]  # class code -> ecosystem key
    nodata_codes: Sequence[str]


@dataclass(frozen=True)
class CoefficientInputs:
    ecosystem: str
    pool: str
    value: Decimal
    unit: str
    basis: str
    sign: str


@dataclass(frozen=True)
class MethodologyInputs:
    slug: str
    version: int
    kind: str
    # In the order the caller lists them (by ecosystem, then pool): the stored
    # fingerprints were made in that order.
    coefficients: Sequence[CoefficientInputs]


def sha256_of_chunks(chunks: Iterable[bytes]) -> str:
    """Hex SHA-256 of a stream of bytes (an upload's chunks, a file's blocks)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(handle) -> str:
    """Hex SHA-256 of an open binary file, read in blocks."""
    return sha256_of_chunks(iter(lambda: handle.read(CHUNK_BYTES), b""))


def _landcover(item: LandCoverInputs | None) -> dict | None:
    if item is None:
        return None
    return {
        "sha256": item.sha256,
        "kind": item.kind,
        "class_field": item.class_field,
        "scheme": item.scheme,
        "mapping": sorted(item.mapping.items()),
        "nodata_codes": sorted(item.nodata_codes),
    }


def _methodology(item: MethodologyInputs) -> dict:
    return {
        "slug": item.slug,
        "version": item.version,
        "kind": item.kind,
        "coefficients": [
            [c.ecosystem, c.pool, str(c.value), c.unit, c.basis, c.sign]
            for c in item.coefficients
        ],
    }


def estimate_inputs(
    *,
    boundary_wkb: bytes,
    landcover: LandCoverInputs,
    baseline: LandCoverInputs | None,
    methodology: MethodologyInputs,
    period: tuple[date, date] | None,
    years: Decimal | None = None,
    price: Decimal | None,
    engine: str = ENGINE_VERSION,
) -> dict:
    """Everything an estimate's numbers depend on, as canonical JSON-able data.
    A run has a ``period``; the command line may give only a length in
    ``years``, which then stands in for it (and matches no run)."""
    return {
        "boundary_wkb_sha256": hashlib.sha256(bytes(boundary_wkb)).hexdigest(),
        "dataset": _landcover(landcover),
        "baseline_dataset": _landcover(baseline),
        "methodology": _methodology(methodology),
        "period": (
            [period[0].isoformat(), period[1].isoformat()]
            if period is not None
            else {"years": str(years)}
        ),
        # To the fen, as stored: 95.7 and 95.70 are the same input.
        "price_cny_per_t_co2e": None if price is None else str(money(price, "CNY")),
        "engine": engine,
    }


def fingerprint(inputs: dict) -> str:
    """Hex SHA-256 of ``estimate_inputs``' canonical JSON."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
