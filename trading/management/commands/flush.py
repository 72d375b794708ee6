"""Django's ``flush``, allowed to empty the append-only journal (tests and
demo resets use it) where LEDGER_PURGE_ALLOWED is set, and refused outright
elsewhere (production settings): emptying a registry's journal is never an
operation of the running application. Everything else about the journal stays
refused."""

from django.conf import settings
from django.core.management import CommandError
from django.core.management.commands.flush import Command as DjangoFlushCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.translation import gettext as _

from trading.db_guards import ledger_purge_allowed


class Command(DjangoFlushCommand):
    def handle(self, **options):
        if not getattr(settings, "LEDGER_PURGE_ALLOWED", False):
            raise CommandError(
                _(
                    "flush is refused under these settings: it would empty the "
                    "append-only ledger journal (LEDGER_PURGE_ALLOWED is off)."
                )
            )
        connection = connections[options.get("database", DEFAULT_DB_ALIAS)]
        with ledger_purge_allowed(connection):
            return super().handle(**options)
