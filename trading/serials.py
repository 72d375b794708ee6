"""Serial-range arithmetic: pure, no Django. A range is (first, last), inclusive;
its quantity is last - first + 1."""

from collections.abc import Iterable


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
