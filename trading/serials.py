"""Serial-range arithmetic: pure, no Django. A range is (first, last), inclusive;
its quantity is last - first + 1."""

import re
from collections.abc import Iterable

MAX_SERIAL_DIGITS = 18  # serials are bigint; longer input is no serial
_TYPED_SERIAL = re.compile(rf"[0-9]{{1,{MAX_SERIAL_DIGITS}}}")


def parse_serial(text: str) -> int | None:
    """A serial number as a person types it ("4,210", " 0000004210 "), or
    None: the one reading of a serial, for the public pages and the API."""
    digits = re.sub(r"[\s,_]", "", text or "")
    if not _TYPED_SERIAL.fullmatch(digits):
        return None
    number = int(digits)
    return number if number > 0 else None


def quantity(first: int, last: int) -> int:
    return last - first + 1


def split(first: int, last: int, take: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The first ``take`` serials of a range, and the rest (0 < take < quantity)."""
    if not 0 < take < quantity(first, last):
        raise ValueError("take must be more than 0 and less than the range")
    return (first, first + take - 1), (first + take, last)


def gaps_and_overlaps(
    ranges: Iterable[tuple[int, int]], first: int, last: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Where the ranges fail to tile [first, last] exactly: the serials covered by
    none (gaps) and the serials covered twice (overlaps)."""
    gaps, overlaps = [], []
    expected = first
    for start, end in sorted(ranges):
        if start > expected:
            gaps.append((expected, start - 1))
        elif start < expected:
            overlaps.append((start, min(end, expected - 1)))
        expected = max(expected, end + 1)
    if expected <= last:
        gaps.append((expected, last))
    return gaps, overlaps
