"""Replaying the journal: pure, no Django.

Each journal entry moves the serial range it names from one holding to
another; a holding is an (account id, block state) pair. What each kind does
(``trading.services`` and the PostgreSQL functions in ``trading/db_guards.py``
write exactly these steps):

========  =========================  ===========================
kind      serials leave              serials arrive at
========  =========================  ===========================
issue     (not yet issued)           (to account, active)
buffer    (not yet issued)           (to account, active)
reserve   (from account, active)     (to account, reserved)
release   (from account, reserved)   (to account, active)
transfer  (from account, reserved)   (to account, active)
retire    (from account, reserved)   (to account, retired)
cancel    (from account, reserved)   (to account, cancelled)
list      (from account, active)     (to account, listed)
delist    (from account, listed)     (to account, active)
order     (from account, listed)     (to account, reserved)
return    (from account, reserved)   (to account, listed)
========  =========================  ===========================

(``reserve``, ``release`` and the market's four kinds name the same account
on both sides: the seller's.) Replaying a
batch's entries in sequence order therefore gives, serial by serial, where the
journal says every credit of the batch is; ``differing_runs`` compares that with
where the credit blocks say they are. Comparison is by serial, not by block, so
two adjacent blocks of one holding equal one longer block.
"""

import itertools
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

# kind -> (state the serials leave, or None: not issued yet; state they arrive in)
MOVES = {
    "issue": (None, "active"),
    "buffer": (None, "active"),
    "reserve": ("active", "reserved"),
    "release": ("reserved", "active"),
    "transfer": ("reserved", "active"),
    "retire": ("reserved", "retired"),
    "cancel": ("reserved", "cancelled"),
    "list": ("active", "listed"),
    "delist": ("listed", "active"),
    "order": ("listed", "reserved"),
    "return": ("reserved", "listed"),
}

Holding = tuple[int, str]  # (account id, state)
Run = tuple[int, int, Holding | None]  # (first serial, last serial, holding)


@dataclass(frozen=True)
class Misstep:
    """An entry that moves serials from where the journal before it does not
    put them: ``claimed`` is where the entry says they were, ``held`` where the
    earlier entries left them (None: never issued). ``kind_known`` is False for
    an entry of a kind the replay does not know."""

    sequence: int
    first: int
    last: int
    claimed: Holding | None
    held: Holding | None
    kind_known: bool = True


class BatchReplay:
    """One batch's serials as the journal leaves them: disjoint runs, keyed by
    their first serial. Runs are split where entries split them and never
    merged, so in an honest journal every entry starts exactly at a run (a
    reservation takes the front of a block, a settlement whole blocks) and
    costs O(1); anything else falls back to a sorted search."""

    def __init__(self) -> None:
        self._runs: dict[int, tuple[int, Holding]] = {}
        self._starts: list[int] | None = None  # sorted keys, built on demand

    def apply(
        self,
        *,
        sequence: int,
        kind: str,
        first: int,
        last: int,
        from_account: int | None,
        to_account: int,
    ) -> list[Misstep]:
        """Move the entry's serials; return where it contradicts the entries
        before it. The move is made even then, so later entries replay against
        what the journal claims."""
        if kind not in MOVES or first > last:
            return [Misstep(sequence, first, last, None, None, kind_known=False)]
        leaves, arrives = MOVES[kind]
        source = None if leaves is None else (from_account, leaves)
        missteps = [
            Misstep(sequence, start, end, source, held)
            for start, end, held in self._take(first, last)
            if held != source
        ]
        self._set(first, (last, (to_account, arrives)))
        return missteps

    def runs(self) -> list[Run]:
        return [
            (first, last, holding)
            for first, (last, holding) in sorted(self._runs.items())
        ]

    def holdings(self) -> Counter:
        """Tonnes per holding."""
        totals = Counter()
        for first, (last, holding) in self._runs.items():
            totals[holding] += last - first + 1
        return totals

    def _set(self, first: int, run: tuple[int, Holding]) -> None:
        if first not in self._runs:
            self._starts = None
        self._runs[first] = run

    def _delete(self, first: int) -> None:
        del self._runs[first]
        self._starts = None

    def _sorted_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = sorted(self._runs)
        return self._starts

    def _take(self, first: int, last: int) -> list[Run]:
        """Remove [first, last] from the runs; return the pieces it covered, in
        order, with None for serials no run held."""
        pieces = []
        serial = first
        while serial <= last:
            if serial not in self._runs:
                starts = self._sorted_starts()
                index = bisect_right(starts, serial) - 1
                if index >= 0 and self._runs[starts[index]][0] >= serial:
                    # Inside a run that starts earlier: split it at this serial.
                    start = starts[index]
                    end, holding = self._runs[start]
                    self._runs[start] = (serial - 1, holding)
                    self._set(serial, (end, holding))
                else:
                    following = starts[index + 1] if index + 1 < len(starts) else None
                    end = last if following is None else min(last, following - 1)
                    pieces.append((serial, end, None))
                    serial = end + 1
                    continue
            end, holding = self._runs[serial]
            if end > last:
                self._set(last + 1, (end, holding))
                end = last
            self._delete(serial)
            pieces.append((serial, end, holding))
            serial = end + 1
        return pieces


def _normalized(runs) -> list[Run]:
    """Sorted, disjoint runs with adjacent runs of one holding joined. Where
    runs overlap (blocks that do; the tiling check reports them) the earlier
    one wins the shared serials."""
    result: list[Run] = []
    for first, last, holding in sorted(runs, key=lambda run: (run[0], run[1])):
        if result and first <= result[-1][1]:
            first = result[-1][1] + 1
            if first > last:
                continue
        if result and result[-1][2] == holding and result[-1][1] + 1 == first:
            result[-1] = (result[-1][0], last, holding)
        else:
            result.append((first, last, holding))
    return result


def _holding_at(runs: list[Run], index: int, serial: int) -> tuple[int, Holding | None]:
    """Advance ``index`` to the run that may cover ``serial``; its holding."""
    while index < len(runs) and runs[index][1] < serial:
        index += 1
    if index < len(runs) and runs[index][0] <= serial:
        return index, runs[index][2]
    return index, None


def differing_runs(
    expected, found
) -> list[tuple[int, int, Holding | None, Holding | None]]:
    """The serial runs where two lists of (first, last, holding) disagree, as
    (first, last, expected holding, found holding), None meaning "held by no
    one"; neighbouring serials with the same disagreement form one run."""
    expected, found = _normalized(expected), _normalized(found)
    points = sorted(
        {run[0] for run in expected}
        | {run[1] + 1 for run in expected}
        | {run[0] for run in found}
        | {run[1] + 1 for run in found}
    )
    differences = []
    at_expected = at_found = 0
    for start, following in itertools.pairwise(points):
        at_expected, wanted = _holding_at(expected, at_expected, start)
        at_found, held = _holding_at(found, at_found, start)
        if wanted == held:
            continue
        end = following - 1
        if (
            differences
            and differences[-1][1] + 1 == start
            and differences[-1][2:] == (wanted, held)
        ):
            differences[-1] = (differences[-1][0], end, wanted, held)
        else:
            differences.append((start, end, wanted, held))
    return differences
