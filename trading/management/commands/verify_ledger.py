import json

from django.core.management.base import BaseCommand, CommandError

from trading.verification import verify_ledger


class Command(BaseCommand):
    help = (
        "Check the ledger: conservation per batch, no gaps or overlaps, reservations, "
        "and the journal's hash chain. Exits non-zero on any violation."
    )

    def handle(self, *args, **options):
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
