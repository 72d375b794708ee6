"""Serial-range arithmetic (trading/serials.py), tested directly: every rule
here decides which credits a holder owns, so each case names the mistake it
catches."""

import pytest

from trading.serials import (
    MAX_SERIAL_DIGITS,
    gaps_and_overlaps,
    parse_serial,
    quantity,
    split,
)


@pytest.mark.parametrize(
    ("typed", "serial"),
    [
        ("4210", 4210),
        ("4,210", 4210),
        (" 0000004210 ", 4210),
        ("4 210", 4210),
        ("4_210", 4210),
        ("\t42\n", 42),
        ("1", 1),
        ("9" * MAX_SERIAL_DIGITS, int("9" * MAX_SERIAL_DIGITS)),
    ],
)
def test_a_serial_is_read_as_a_person_types_it(typed, serial):
    assert parse_serial(typed) == serial


@pytest.mark.parametrize(
    "typed",
    [
        "",
        None,
        "   ",
        "0",
        "000",
        "-5",
        "+5",
        "4.2",
        "42a",
        "a42",
        "４２",  # full-width digits are not what the registry prints
        "1" * (MAX_SERIAL_DIGITS + 1),  # beyond bigint: no serial
    ],
)
def test_anything_else_is_no_serial(typed):
    assert parse_serial(typed) is None


def test_eighteen_digits_is_the_limit():
    assert MAX_SERIAL_DIGITS == 18


def test_a_range_counts_both_ends():
    assert quantity(1, 1) == 1
    assert quantity(10, 19) == 10
    assert quantity(1_000_001, 2_000_000) == 1_000_000


def test_split_gives_the_first_serials_and_the_rest():
    assert split(10, 19, 1) == ((10, 10), (11, 19))
    assert split(10, 19, 3) == ((10, 12), (13, 19))
    assert split(10, 19, 9) == ((10, 18), (19, 19))


@pytest.mark.parametrize("take", [0, -1, 10, 11])
def test_split_refuses_nothing_or_everything(take):
    refusal = r"^take must be more than 0 and less than the range$"
    with pytest.raises(ValueError, match=refusal):
        split(10, 19, take)


def test_ranges_that_tile_exactly_have_no_gaps_or_overlaps():
    assert gaps_and_overlaps([(1, 4), (5, 5), (6, 10)], 1, 10) == ([], [])
    # order of the ranges does not matter
    assert gaps_and_overlaps([(6, 10), (1, 5)], 1, 10) == ([], [])


def test_gaps_are_reported_where_no_range_covers():
    assert gaps_and_overlaps([(3, 4), (7, 8)], 1, 10) == ([(1, 2), (5, 6), (9, 10)], [])
    assert gaps_and_overlaps([], 1, 10) == ([(1, 10)], [])
    assert gaps_and_overlaps([(2, 10)], 1, 10) == ([(1, 1)], [])
    assert gaps_and_overlaps([(1, 9)], 1, 10) == ([(10, 10)], [])


def test_overlaps_are_reported_serial_by_serial():
    # 4..5 covered twice
    assert gaps_and_overlaps([(1, 5), (4, 10)], 1, 10) == ([], [(4, 5)])
    # a range inside another overlaps by its whole length, and no more
    assert gaps_and_overlaps([(1, 10), (3, 4)], 1, 10) == ([], [(3, 4)])
    # the same range twice
    assert gaps_and_overlaps([(1, 10), (1, 10)], 1, 10) == ([], [(1, 10)])
    # after a contained range the next one is compared with the outer end
    assert gaps_and_overlaps([(1, 8), (2, 3), (9, 10)], 1, 10) == ([], [(2, 3)])


def test_gaps_and_overlaps_together():
    assert gaps_and_overlaps([(1, 3), (3, 4), (7, 10)], 1, 10) == ([(5, 6)], [(3, 3)])
