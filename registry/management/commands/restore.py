"""``manage.py restore DIR``: put back a backup made by ``manage.py backup``.

Everything is checked before anything changes: the manifest, every file's
size and SHA-256, the database vendor, the migrations (a backup made by a
newer version of the code is refused) and, on PostgreSQL, the extensions the
dump needs. Then the media files are copied next to the live ones (a full
disk fails here, with nothing changed), the database is restored in one
transaction, and the copied media files take the live ones' place.

Run it as the database's owner (the `migrate` service's DATABASE_URL and
DATABASE_APP_ROLE) with web, worker and beat stopped."""

import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registry import backups

logger = logging.getLogger(__name__)

# Where the restored media files wait inside MEDIA_ROOT (the same file system,
# so moving them into place is a rename; MEDIA_ROOT itself may be a volume's
# mount point, which cannot be renamed).
STAGING_PREFIX = ".restoring-"


def problem_text(problem: backups.Problem) -> str:
    texts = {
        "missing": _("%(path)s is listed in the manifest but missing."),
        "extra": _("%(path)s is not listed in the manifest."),
        "size": _("%(path)s has another size than the manifest says."),
        "sha256": _("%(path)s has another SHA-256 than the manifest says."),
    }
    return texts[problem.code] % {"path": problem.path}


class Command(BaseCommand):
    help = (
        "Restore the database and the media files from a folder written by "
        "`manage.py backup`, after checking it against its manifest. Replaces "
        "the configured database and everything in MEDIA_ROOT."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", metavar="DIR", help="A backup folder.")
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, folder, interactive, database, **options):
        folder = Path(folder)
        connection = connections[database]
        manifest = self._checked_manifest(folder, connection)
        toc = None
        if connection.vendor == "postgresql":
            toc = self._checked_toc(folder / manifest["database"]["file"], connection)
        if interactive and not self._confirmed(connection):
            raise CommandError(_("Restore cancelled: nothing was changed."))

        media_root = Path(settings.MEDIA_ROOT)
        media_root.mkdir(parents=True, exist_ok=True)
        staging = media_root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            self._stage_media(folder, manifest, staging)
            if connection.vendor == "postgresql":
                self._restore_postgresql(
                    folder / manifest["database"]["file"], toc, connection
                )
            else:
                self._restore_sqlite(folder / manifest["database"]["file"], connection)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            self._swap_media(media_root, staging)
        except OSError as error:
            logger.error("Restore: replacing the media files failed: %s", error)
            raise CommandError(
                _(
                    "The database was restored, but replacing the media files in "
                    "%(media)s failed (%(error)s): copy the backup's media folder "
                    "into it by hand before starting the site."
                )
                % {"media": media_root, "error": error}
            ) from None
        # The schema up to this code (nothing to do when the backup is as new),
        # and, after migrate, the application role's grants again
        # (trading's post_migrate handler): the dump carries none.
        call_command("migrate", database=database, interactive=False, verbosity=0)
        files = len(manifest["files"]) - 1
        self.stdout.write(
            self.style.SUCCESS(
                ngettext(
                    "Restored the database and %(files)s media file from %(folder)s "
                    "(backup of %(created)s). Now run verify_ledger.",
                    "Restored the database and %(files)s media files from "
                    "%(folder)s (backup of %(created)s). Now run verify_ledger.",
                    files,
                )
                % {"files": files, "folder": folder, "created": manifest["created_at"]}
            )
        )

    # Checks: nothing changes until they all pass ---------------------------------

    def _checked_manifest(self, folder: Path, connection) -> dict:
        if not folder.is_dir():
            raise CommandError(_("%(folder)s is not a folder.") % {"folder": folder})
        if backups.is_inside(folder, Path(settings.MEDIA_ROOT)):
            # Replacing the media files would delete the backup being read.
            raise CommandError(
                _(
                    "%(folder)s lies inside MEDIA_ROOT (%(media)s), which a "
                    "restore replaces: move the backup elsewhere first."
                )
                % {"folder": folder, "media": settings.MEDIA_ROOT}
            )
        try:
            manifest = backups.read_manifest(folder)
        except backups.ManifestError as error:
            if error.code == "missing":
                raise CommandError(
                    _(
                        "%(folder)s has no manifest.json: it is not a backup, or "
                        "one that never finished. Nothing was restored."
                    )
                    % {"folder": folder}
                ) from None
            raise CommandError(
                _(
                    "The manifest of %(folder)s cannot be read as a backup "
                    "manifest (%(detail)s). Nothing was restored."
                )
                % {"folder": folder, "detail": error.detail}
            ) from None
        problems = backups.check_folder(folder, manifest)
        if problems:
            shown = [problem_text(problem) for problem in problems[:20]]
            raise CommandError(
                ngettext(
                    "The backup does not match its manifest (%(count)s problem); "
                    "nothing was restored:\n%(problems)s",
                    "The backup does not match its manifest (%(count)s problems); "
                    "nothing was restored:\n%(problems)s",
                    len(problems),
                )
                % {"count": len(problems), "problems": "\n".join(shown)}
            )
        vendor = manifest["database"]["vendor"]
        if vendor != connection.vendor:
            raise CommandError(
                _(
                    "This is a backup of a %(backup)s database, but the configured "
                    "database is %(configured)s: nothing was restored."
                )
                % {"backup": vendor, "configured": connection.vendor}
            )
        loader = MigrationLoader(None, ignore_no_migrations=True)
        unknown = backups.unknown_migrations(
            manifest["migrations"], set(loader.disk_migrations)
        )
        if unknown:
            raise CommandError(
                _(
                    "The backup's database has migrations this code does not "
                    "have (%(migrations)s): it was made by a newer version. "
                    "Restore it with that version. Nothing was restored."
                )
                % {"migrations": ", ".join(f"{app}.{name}" for app, name in unknown)}
            )
        return manifest

    def _pg_environment(self, connection) -> dict:
        environment = backups.postgres_environment(connection.settings_dict, os.environ)
        if shutil.which("pg_restore", path=environment.get("PATH")) is None:
            raise CommandError(
                _(
                    "pg_restore was not found: install the PostgreSQL client of "
                    "the server's version (Debian: postgresql-client-15)."
                )
            )
        return environment

    def _checked_toc(self, dump: Path, connection) -> str:
        result = subprocess.run(
            ["pg_restore", "--list", str(dump)],
            env=self._pg_environment(connection),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CommandError(
                _("pg_restore cannot read the dump: %(error)s")
                % {"error": result.stderr.strip()}
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT extname FROM pg_extension")
            present = {row[0] for row in cursor.fetchall()}
        missing = sorted(set(backups.toc_extensions(result.stdout)) - present)
        if missing:
            raise CommandError(
                _(
                    "The database %(database)s lacks the extensions %(extensions)s, "
                    "which only a superuser can create: run CREATE EXTENSION for "
                    "each as the cluster's superuser, then restore again. Nothing "
                    "was restored."
                )
                % {
                    "database": connection.settings_dict["NAME"],
                    "extensions": ", ".join(missing),
                }
            )
        return result.stdout

    def _confirmed(self, connection) -> bool:
        answer = input(
            _(
                "This replaces the database %(database)s and every file in "
                "%(media)s with the backup. Type 'yes' to continue: "
            )
            % {
                "database": connection.settings_dict["NAME"],
                "media": settings.MEDIA_ROOT,
            }
        )
        return answer.strip().lower() == "yes"

    # Changes ---------------------------------------------------------------------

    def _stage_media(self, folder: Path, manifest: dict, staging: Path) -> None:
        """Copy the backup's media files into ``staging`` and check the copies
        against the manifest once more."""
        try:
            copied = backups.copy_tree_described(
                folder / backups.MEDIA_FOLDER, staging, prefix=backups.MEDIA_FOLDER
            )
        except OSError as error:
            logger.error("Restore: copying the media files failed: %s", error)
            raise CommandError(
                _("Copying the media files failed (%(error)s): nothing was restored.")
                % {"error": error}
            ) from None
        expected = [
            record
            for record in backups.manifest_records(manifest)
            if record.path.startswith(backups.MEDIA_FOLDER + "/")
        ]
        if backups.compare(expected, copied):
            raise CommandError(
                _(
                    "The backup's media files changed while they were copied: "
                    "nothing was restored."
                )
            )

    def _restore_postgresql(self, dump: Path, toc: str, connection) -> None:
        environment = self._pg_environment(connection)
        connection.close()
        with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
            listing.write(backups.toc_for_owner(toc))
            listing.flush()
            # One transaction: a failure leaves the database as it was.
            result = subprocess.run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    # Grants are re-applied for this installation's role below.
                    "--no-acl",
                    "--single-transaction",
                    "--exit-on-error",
                    "--use-list",
                    listing.name,
                    "--dbname",
                    connection.settings_dict["NAME"],
                    str(dump),
                ],
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
        if result.returncode != 0:
            logger.error("Restore: pg_restore failed: %s", result.stderr.strip())
            raise CommandError(
                _("pg_restore failed, nothing was restored: %(error)s")
                % {"error": result.stderr.strip()}
            )
        self._drop_tables_not_in_backup(connection, backups.toc_tables(toc))

    def _drop_tables_not_in_backup(self, connection, tables) -> None:
        """Tables that later migrations made and the backup predates: dropped,
        so that migrate makes them again over the restored data."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT n.nspname, c.relname FROM pg_class c
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                   AND pg_has_role(current_user, c.relowner, 'USAGE')
                   AND NOT EXISTS (
                       SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')
                """
            )
            leftovers = sorted(set(cursor.fetchall()) - tables)
            quote_name = connection.ops.quote_name
            for schema, table in leftovers:
                logger.warning(
                    "Restore: dropping %s.%s, not in the backup", schema, table
                )
                cursor.execute(
                    f"DROP TABLE IF EXISTS {quote_name(schema)}.{quote_name(table)} "
                    "CASCADE"
                )

    def _restore_sqlite(self, copy: Path, connection) -> None:
        connection.ensure_connection()
        source = sqlite3.connect(f"file:{quote(str(copy.resolve()))}?mode=ro", uri=True)
        try:
            # SQLite's backup API, into the live database: it takes the write
            # lock and replaces every page at once, so no other connection
            # ever sees half of it.
            source.backup(connection.connection)
        except sqlite3.Error as error:
            logger.error("Restore: the SQLite restore failed: %s", error)
            raise CommandError(
                _("Restoring the database failed, nothing was restored: %(error)s")
                % {"error": error}
            ) from None
        finally:
            source.close()
        connection.close()

    def _swap_media(self, media_root: Path, staging: Path) -> None:
        for entry in media_root.iterdir():
            if entry == staging:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in staging.iterdir():
            os.replace(entry, media_root / entry.name)
        staging.rmdir()
