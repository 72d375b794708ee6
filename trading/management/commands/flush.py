"""Django's ``flush``, allowed to empty the append-only journal (tests and
demo resets use it); everything else about the journal stays refused."""

from django.core.management.commands.flush import Command as DjangoFlushCommand
from django.db import DEFAULT_DB_ALIAS, connections

from trading.db_guards import ledger_purge_allowed


class Command(DjangoFlushCommand):
    def handle(self, **options):
        connection = connections[options.get("database", DEFAULT_DB_ALIAS)]
        with ledger_purge_allowed(connection):
            return super().handle(**options)
