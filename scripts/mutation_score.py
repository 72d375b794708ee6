"""Summarise `mutmut results --all true` as a mutation score per module.

Killed (and timed-out) mutants count for the tests; survivors, mutants no test
reaches and suspicious ones count against them. Prints a Markdown table, then
every mutant that was not killed, so docs/quality.md can explain each.
"""

import subprocess
import sys
from collections import defaultdict

KILLED = {"killed", "timeout", "caught by type check"}
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


def module_of(mutant_name: str) -> str:
    # "trading.services.x_issue_batch__mutmut_3" -> "trading.services";
    # methods are spelt "xǁClassǁmethod__mutmut_n", still after the module.
    dotted = mutant_name.split("__mutmut_")[0]
    return dotted.rsplit(".", 1)[0]


def main() -> int:
    status_by_mutant = _statuses()
    if sys.argv[1:2] == ["--survivors"]:
        # The names a second pass runs again: not killed, in the given modules.
        modules = set(sys.argv[2:])
        for name, status in sorted(status_by_mutant.items()):
            if module_of(name) in modules and status not in KILLED | NOT_RUN:
                print(name)
        return 0
    _print_scores(status_by_mutant)
    return 0


def _statuses() -> dict[str, str]:
    output = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    status_by_mutant = {}
    for line in output.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            status_by_mutant[name] = status
    return status_by_mutant


def _print_scores(status_by_mutant: dict[str, str]) -> None:
    counts = defaultdict(lambda: defaultdict(int))
    for name, status in status_by_mutant.items():
        counts[module_of(name)][status] += 1

    print("| module | killed | total | score | not killed | not run |")
    print("|---|---:|---:|---:|---:|---:|")
    all_killed = all_total = 0
    for module in sorted(counts):
        by_status = counts[module]
        total = sum(n for s, n in by_status.items() if s not in NOT_RUN)
        killed = sum(n for s, n in by_status.items() if s in KILLED)
        not_run = sum(n for s, n in by_status.items() if s in NOT_RUN)
        all_killed, all_total = all_killed + killed, all_total + total
        score = f"{100 * killed / total:.1f}%" if total else "n/a"
        row = [module, killed, total, score, total - killed, not_run]
        print("| " + " | ".join(map(str, row)) + " |")
    if all_total:
        score = f"{100 * all_killed / all_total:.1f}%"
        row = ["all", all_killed, all_total, score, all_total - all_killed, ""]
        print("| " + " | ".join(map(str, row)) + " |")

    print()
    print("Not killed (inspect with `.venv/bin/mutmut show <name>`):")
    for name, status in sorted(status_by_mutant.items()):
        if status not in KILLED and status not in NOT_RUN:
            print(f"  {name}: {status}")


if __name__ == "__main__":
    sys.exit(main())
