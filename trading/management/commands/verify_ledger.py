import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from trading.verification import check_anchor, verify_ledger


class Command(BaseCommand):
    help = (
        "Check the ledger: conservation per batch, no gaps or overlaps, the "
        "journal replayed against the credit blocks, reservations, the journal's "
        "hash chain and the heads the registry published. With --anchor FILE, "
        "check instead a journal head published earlier (its JSON as published): "
        "signed by the registry's key and still contained in today's journal. "
        "Exits non-zero on any violation."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="append",
            metavar="FILE",
            help="A published journal head (JSON) to check; may be repeated.",
        )

    def handle(self, *args, **options):
        if options["anchor"]:
            self._check_anchors(options["anchor"])
            return
        report = verify_ledger()
        summary = report.summary()
        self.stdout.write(
            f"{summary['batches']} batches, {summary['blocks']} blocks, "
            f"{summary['entries']} journal entries; issued {summary['issued']:,} t: "
            + ", ".join(
                f"{state} {total:,}" for state, total in summary["by_state"].items()
            )
        )
        if not report.ok:
            for violation in report.violations[:50]:
                self.stderr.write(json.dumps(violation, default=str))
            raise CommandError(f"The ledger has {len(report.violations)} violation(s).")
        self.stdout.write(self.style.SUCCESS("Ledger verified: every invariant holds."))

    def _check_anchors(self, paths: list[str]) -> None:
        failed = 0
        for path in paths:
            try:
                text = Path(path).read_bytes()
            except OSError as error:
                message = f"{path}: cannot read it ({error.strerror})."
                raise CommandError(message) from None
            try:
                check = check_anchor(text)
            except ValidationError as error:
                message = f"{path}: not a published head: " + " ".join(error.messages)
                raise CommandError(message) from None
            label = f"{path}: entry {check.sequence} published {check.published_at}"
            if check.valid:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{label}: validly signed (key {check.key_id[:16]}) and "
                        f"contained in today's journal (now {check.journal_sequence} "
                        "entries)."
                    )
                )
            else:
                failed += 1
                self.stderr.write(f"{label}: FAILS")
                for problem in check.problems:
                    self.stderr.write(f"  - {problem}")
        if failed:
            raise CommandError(f"{failed} of {len(paths)} published head(s) fail.")
