from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from estimation.demo import load_demo_estimation, load_demo_issuance
from registry.demo import (
    DEMO_PASSWORD,
    USERS,
    load_demo_organizations_and_users,
    load_demo_projects,
)
from trading.anchors import publish_head
from trading.demo import load_demo_market, load_demo_retirement


class Command(BaseCommand):
    help = "Load the Bijie demo data (idempotent). Refused under production settings."

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError(
                "Demo data is refused under production settings: its users share a "
                "published password."
            )
        organizations = load_demo_organizations_and_users()
        projects = load_demo_projects(organizations)
        runs = load_demo_estimation(organizations)
        batches = load_demo_issuance(runs)
        certificate = load_demo_retirement()
        listings = load_demo_market()
        # The public registry shows a signed head from the start, as it does
        # after the first nightly publication in production.
        head, _created = publish_head()
        self.stdout.write(
            self.style.SUCCESS(
                f"Bijie demo ready: {len(organizations)} organizations, "
                f"{len(projects)} projects, {len(runs)} estimation runs, "
                f"{len(batches)} credit batches "
                f"({sum(batch.quantity for batch in batches):,} t CO2e), "
                f"retirement certificate "
                f"{certificate.number if certificate else '(none)'}, "
                f"{len(listings)} market listing(s), "
                f"journal head {head.sequence if head else '(none)'} signed, "
                f"{len(USERS)} users "
                f"(password '{DEMO_PASSWORD}'): "
                + ", ".join(user.username for user in USERS)
            )
        )
