"""``manage.py backup DIR``: the database and the media files, consistent, with
a manifest of SHA-256s (registry/backups.py), into an empty folder.

The database first, in one snapshot (pg_dump's own, or SQLite's online backup
API, which both work while the site runs), then the media files: uploads only
add files, so every file the snapshot names is there when they are copied."""

import logging
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registry import backups

logger = logging.getLogger(__name__)


def last_applied_migrations(connection) -> dict[str, str]:
    """The last migration applied per app, in the order of the migration graph."""
    graph = MigrationLoader(connection, ignore_no_migrations=True).graph
    applied = MigrationRecorder(connection).applied_migrations()
    last = {}
    for app, name in applied:
        node = (app, name)
        depth = len(graph.forwards_plan(node)) if node in graph.nodes else -1
        if app not in last or (depth, name) > last[app][0]:
            last[app] = ((depth, name), name)
    return {app: name for app, (_order, name) in last.items()}


def dump_postgresql(connection, target: Path) -> None:
    environment = backups.postgres_environment(connection.settings_dict, os.environ)
    if shutil.which("pg_dump", path=environment.get("PATH")) is None:
        raise CommandError(
            _(
                "pg_dump was not found: install the PostgreSQL client of the "
                "server's version (Debian: postgresql-client-15)."
            )
        )
    result = subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(target)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CommandError(
            _("pg_dump failed: %(error)s") % {"error": result.stderr.strip()}
        )


def copy_sqlite(connection, target: Path) -> None:
    connection.ensure_connection()
    copy = sqlite3.connect(target)
    try:
        # One read transaction on the live database: a consistent copy while
        # the site keeps writing.
        connection.connection.backup(copy)
        # A rollback journal, not WAL: opening the copy later leaves no
        # -wal/-shm files beside it.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database and the media files into an "
        "empty folder, with a manifest (manifest.json, written last) of every "
        "file's size and SHA-256. `manage.py restore` reads it back."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", metavar="DIR", help="An empty or new folder.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, folder, database, **options):
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise CommandError(_("%(folder)s is not a folder.") % {"folder": folder})
        if folder.is_dir() and any(folder.iterdir()):
            raise CommandError(
                _(
                    "%(folder)s is not empty: a backup goes into an empty or new "
                    "folder, so that it never mixes with another."
                )
                % {"folder": folder}
            )
        if backups.is_inside(folder, Path(settings.MEDIA_ROOT)):
            # It would copy itself into itself.
            raise CommandError(
                _(
                    "%(folder)s lies inside MEDIA_ROOT (%(media)s): keep backups "
                    "outside the files they back up."
                )
                % {"folder": folder, "media": settings.MEDIA_ROOT}
            )
        connection = connections[database]
        vendor = connection.vendor
        if vendor not in backups.DATABASE_FILES:
            raise CommandError(
                _("Backups of a %(vendor)s database are not supported.")
                % {"vendor": vendor}
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            created_at = timezone.now().isoformat()
            migrations = last_applied_migrations(connection)
            database_file = backups.DATABASE_FILES[vendor]
            if vendor == "postgresql":
                dump_postgresql(connection, folder / database_file)
            else:
                copy_sqlite(connection, folder / database_file)
            records = [backups.describe_file(folder / database_file, database_file)]
            records += backups.copy_tree_described(
                Path(settings.MEDIA_ROOT),
                folder / backups.MEDIA_FOLDER,
                prefix=backups.MEDIA_FOLDER,
            )
            manifest = backups.build_manifest(
                created_at=created_at,
                vendor=vendor,
                migrations=migrations,
                files=records,
            )
            backups.write_manifest(folder, manifest)
        except (OSError, sqlite3.Error) as error:
            logger.error("Backup into %s failed: %s", folder, error)
            raise CommandError(
                _(
                    "The backup into %(folder)s failed and is incomplete (it has "
                    "no manifest, so it cannot be restored): %(error)s"
                )
                % {"folder": folder, "error": error}
            ) from None
        except CommandError as error:
            logger.error("Backup into %s failed: %s", folder, error)
            raise
        size = sum(record.size for record in records)
        files = len(records) - 1
        self.stdout.write(
            self.style.SUCCESS(
                ngettext(
                    "Backup written to %(folder)s: the %(vendor)s database and "
                    "%(files)s media file, %(bytes)s bytes in all.",
                    "Backup written to %(folder)s: the %(vendor)s database and "
                    "%(files)s media files, %(bytes)s bytes in all.",
                    files,
                )
                % {
                    "folder": folder,
                    "vendor": vendor,
                    "files": files,
                    "bytes": f"{size:,}",
                }
            )
        )
