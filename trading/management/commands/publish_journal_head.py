import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from trading.anchors import publish_head


class Command(BaseCommand):
    help = (
        "Sign the journal's current head with the registry's key "
        "(LEDGER_SIGNING_KEY) and publish it; prints the head as JSON, as the "
        "public registry shows it. Idempotent: an unchanged head is not "
        "published twice. The beat schedule runs this daily."
    )

    def handle(self, *args, **options):
        try:
            anchor, created = publish_head()
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if anchor is None:
            self.stderr.write("The journal is empty: there is no head to publish.")
            return
        self.stdout.write(json.dumps(anchor.document(), indent=2))
        self.stderr.write(
            f"Entry {anchor.sequence} "
            + ("published now." if created else "was already published.")
        )
