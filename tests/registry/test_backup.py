"""Backup and restore (`manage.py backup` / `restore`): the database and the
media files come back together, and a backup that does not match its manifest,
or does not fit this database or this code, is refused with nothing changed.

The tests run on whichever database is configured: SpatiaLite in the first
stage of `make test` (SQLite's backup API), PostgreSQL in the second (pg_dump
and pg_restore); the tests marked production_stack need PostgreSQL."""

import ast
import json
import os
import subprocess
from datetime import date
from hashlib import sha256
from pathlib import Path

import psycopg
import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from estimation.models import EstimationRun, Verification
from estimation.selectors import current_fingerprint
from estimation.services.datasets import stored_file_sha256
from estimation.services.issuance import issue_verification
from estimation.services.verification import (
    approve_verification,
    submit_for_verification,
)
from registry import backups
from registry.models import Organization
from tests.estimation.conftest import (  # noqa: F401 (fixtures)
    create_run,
    dataset,
    default_methodology,
    landcover_file,
    owner,
    project,
    registered_project,
    registry_admin,
    registry_operator,
    run_for,
    staff,
    verification_body,
    verifier,
)
from tests.registry.factories import OrganizationFactory
from trading import services as trading_services
from trading.anchors import publish_head
from trading.certificates import check_certificate
from trading.models import Certificate, CreditBatch, JournalAnchor
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def backup(folder: Path) -> dict:
    call_command("backup", str(folder))
    return json.loads((folder / "manifest.json").read_text())


def restore(folder: Path, *arguments):
    call_command("restore", str(folder), "--no-input", *arguments)


def media_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# The whole way back: ledger, certificates, fingerprints, issuance -------------------


def _verified(run, submitter, checker, start, end):
    verification = submit_for_verification(
        actor=submitter, run=run, monitoring_start=start, monitoring_end=end
    )
    return approve_verification(actor=checker, verification=verification)


def _retire(holder, organization, reviewer, quantity):
    request = trading_services.request_retirement(
        actor=holder,
        from_account=organization.accounts.get(kind="holding"),
        quantity=quantity,
        beneficiary="毕节市绿色能源有限公司",
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key="backup-retirement",
    )
    trading_services.approve_request(actor=reviewer, request=request)
    return Certificate.objects.get(trade_request=request)


def test_backup_and_restore_bring_back_the_ledger_media_and_issuance(
    reference_data,
    staff,  # noqa: F811 (fixtures)
    owner,  # noqa: F811
    verifier,  # noqa: F811
    registry_admin,  # noqa: F811
    registered_project,  # noqa: F811
    run_for,  # noqa: F811
):
    first_run = run_for(period_start=date(2021, 1, 1), period_end=date(2022, 12, 31))
    second_run = run_for(period_start=date(2023, 1, 1), period_end=date(2024, 12, 31))
    first = _verified(first_run, staff, verifier, date(2021, 1, 1), date(2022, 12, 31))
    issue_verification(actor=registry_admin, verification=first)
    certificate = _retire(staff, owner, registry_admin, quantity=3)
    publish_head()
    second = _verified(
        second_run, staff, verifier, date(2023, 1, 1), date(2024, 12, 31)
    )
    media_root = Path(settings.MEDIA_ROOT)
    media_before = media_files(media_root)
    landcover = Path(first_run.dataset.file.path)
    assert landcover.relative_to(media_root).as_posix() in media_before

    folder = Path(settings.MEDIA_ROOT).parent / "backup"
    manifest = backup(folder)
    assert manifest["database"]["vendor"] == connection.vendor
    listed = {item["path"] for item in manifest["files"]}
    assert {f"media/{path}" for path in media_before} | {
        manifest["database"]["file"]
    } == listed

    # The disaster: credits issued since, a land-cover file lost, a stray file.
    issue_verification(actor=registry_admin, verification=second)
    landcover.unlink()
    (media_root / "stray.txt").write_text("not in the backup")
    assert stored_file_sha256(first_run.dataset) != first_run.dataset.sha256

    restore(folder)

    assert media_files(media_root) == media_before
    assert not list(media_root.glob(".restoring-*"))
    assert CreditBatch.objects.count() == 1
    report = verify_ledger(record=False)
    assert report.ok, report.violations
    assert JournalAnchor.objects.count() == 1  # its signature checked above
    assert check_certificate(Certificate.objects.get(pk=certificate.pk)).valid
    for run in EstimationRun.objects.filter(pk__in=[first_run.pk, second_run.pk]):
        assert current_fingerprint(run) == run.fingerprint
        assert stored_file_sha256(run.dataset) == run.dataset.sha256
    second = Verification.objects.get(pk=second.pk)
    assert second.status == Verification.Status.APPROVED
    issued = issue_verification(actor=registry_admin, verification=second)
    assert issued.batch.quantity > 0
    assert verify_ledger(record=False).ok


# The backup --------------------------------------------------------------------------


@pytest.fixture
def small_backup(media, tmp_path):
    """A backup of one organization and two media files."""
    OrganizationFactory(name_en="Kept organization")
    (media / "documents").mkdir()
    (media / "documents" / "deed.pdf").write_bytes(b"%PDF deed")
    (media / "map.png").write_bytes(b"\x89PNG map")
    folder = tmp_path / "backup"
    backup(folder)
    return folder


def test_the_manifest_lists_every_file_with_size_sha256_and_the_migrations(
    small_backup,
):
    manifest = json.loads((small_backup / "manifest.json").read_text())
    assert manifest["format"] == backups.FORMAT_VERSION
    assert manifest["created_at"]
    files = {item["path"]: item for item in manifest["files"]}
    database_file = backups.DATABASE_FILES[connection.vendor]
    assert set(files) == {database_file, "media/documents/deed.pdf", "media/map.png"}
    assert files["media/map.png"]["size"] == len(b"\x89PNG map")
    assert files["media/map.png"]["sha256"] == sha256(b"\x89PNG map").hexdigest()
    database = small_backup / database_file
    assert files[database_file]["size"] == database.stat().st_size
    # The last migration of every app, as the code has it on disk.
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaves = dict(graph.leaf_nodes())
    assert manifest["migrations"]["registry"] == leaves["registry"]
    assert manifest["migrations"]["trading"] == leaves["trading"]
    assert manifest["migrations"]["estimation"] == leaves["estimation"]


def test_a_backup_is_refused_into_a_folder_that_is_not_empty(media, tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "old.txt").write_text("an older backup")
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", str(folder))
    assert [path.name for path in folder.iterdir()] == ["old.txt"]


def test_a_backup_inside_the_media_folder_is_refused(small_backup, media):
    inside = media / "backups" / "tonight"
    with pytest.raises(CommandError, match="inside MEDIA_ROOT"):
        call_command("backup", str(inside))
    assert not (media / "backups").exists()
    # A backup moved into the media folder would be deleted by its own restore.
    small_backup.rename(media / "moved")
    with pytest.raises(CommandError, match="inside MEDIA_ROOT"):
        restore(media / "moved")
    assert (media / "moved" / "manifest.json").exists()


def test_a_backup_that_fails_half_way_has_no_manifest(media, tmp_path, monkeypatch):
    (media / "map.png").write_bytes(b"png")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backups, "copy_tree_described", disk_full)
    folder = tmp_path / "backup"
    with pytest.raises(CommandError, match="no manifest"):
        call_command("backup", str(folder))
    assert (folder / backups.DATABASE_FILES[connection.vendor]).exists()
    assert not (folder / "manifest.json").exists()
    with pytest.raises(CommandError, match=r"no manifest\.json"):
        restore(folder)


# Restore: every refusal changes nothing ----------------------------------------------


def _tamper_content(folder):
    path = folder / "media" / "map.png"
    data = bytearray(path.read_bytes())
    data[0] ^= 1  # same size, other bytes
    path.write_bytes(bytes(data))


def _tamper_database(folder):
    path = folder / backups.DATABASE_FILES[connection.vendor]
    with open(path, "ab") as stream:
        stream.write(b"\0")


def _remove_file(folder):
    (folder / "media" / "documents" / "deed.pdf").unlink()


def _add_file(folder):
    (folder / "media" / "planted.html").write_text("<script>")


def _remove_manifest(folder):
    (folder / "manifest.json").unlink()


def _edit_manifest(change):
    def edit(folder):
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return edit


def _other_vendor(manifest):
    vendor = "sqlite" if connection.vendor == "postgresql" else "postgresql"
    database_file = manifest["database"]["file"]
    manifest["database"] = {"vendor": vendor, "file": backups.DATABASE_FILES[vendor]}
    for item in manifest["files"]:
        if item["path"] == database_file:
            item["path"] = backups.DATABASE_FILES[vendor]
    # The file under the name its vendor uses, so only the vendor is wrong.
    return database_file, backups.DATABASE_FILES[vendor]


def _wrong_vendor(folder):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    old, new = _other_vendor(manifest)
    (folder / old).rename(folder / new)
    path.write_text(json.dumps(manifest))


def _newer_migrations(manifest):
    manifest["migrations"]["registry"] = "9999_from_a_newer_version"


def _unlisted_database(manifest):
    database_file = manifest["database"]["file"]
    manifest["files"] = [i for i in manifest["files"] if i["path"] != database_file]


REFUSALS = {
    "changed file": (_tamper_content, "another SHA-256"),
    "changed database": (_tamper_database, "another size"),
    "missing file": (_remove_file, "listed in the manifest but missing"),
    "extra file": (_add_file, "planted.html is not listed in the manifest"),
    "database not listed": (
        _edit_manifest(_unlisted_database),
        "is not listed in the manifest",
    ),
    "no manifest": (_remove_manifest, "has no manifest.json"),
    "unreadable manifest": (
        _edit_manifest(lambda manifest: manifest.update(format=99)),
        "cannot be read as a backup manifest",
    ),
    "wrong vendor": (_wrong_vendor, "configured database is"),
    "newer migrations": (
        _edit_manifest(_newer_migrations),
        "registry.9999_from_a_newer_version",
    ),
}


@pytest.mark.parametrize("tamper", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_restore_that_does_not_match_is_refused_and_changes_nothing(
    small_backup, media, tamper
):
    change, message = tamper
    # Since the backup: a new organization, a new file, a deleted file.
    OrganizationFactory(name_en="Made after the backup")
    (media / "after.txt").write_text("new")
    (media / "map.png").unlink()
    organizations = set(Organization.objects.values_list("name_en", flat=True))
    files = media_files(media)
    change(small_backup)

    with pytest.raises(CommandError, match=message):
        restore(small_backup)

    assert set(Organization.objects.values_list("name_en", flat=True)) == organizations
    assert media_files(media) == files


def test_a_restore_not_confirmed_changes_nothing(small_backup, media, monkeypatch):
    OrganizationFactory(name_en="Made after the backup")
    (media / "after.txt").write_text("new")
    answers = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.append(prompt) or "no")
    with pytest.raises(CommandError, match="cancelled"):
        call_command("restore", str(small_backup))
    assert "Type 'yes'" in answers[0]
    assert Organization.objects.filter(name_en="Made after the backup").exists()
    assert (media / "after.txt").exists()


def test_a_confirmed_restore_replaces_data_and_media(small_backup, media, monkeypatch):
    OrganizationFactory(name_en="Made after the backup")
    Organization.objects.filter(name_en="Kept organization").delete()
    (media / "after.txt").write_text("new")
    (media / "documents" / "deed.pdf").write_bytes(b"overwritten")
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("restore", str(small_backup))
    names = set(Organization.objects.values_list("name_en", flat=True))
    assert "Kept organization" in names
    assert "Made after the backup" not in names
    assert media_files(media) == {
        "documents/deed.pdf": b"%PDF deed",
        "map.png": b"\x89PNG map",
    }


# The pure module ---------------------------------------------------------------------


def test_the_manifest_module_imports_no_django():
    path = Path(settings.BASE_DIR) / "registry" / "backups.py"
    tree = ast.parse(path.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"django", "registry", "trading", "estimation", "config"}


def test_compare_names_missing_extra_and_changed_files():
    record = backups.FileRecord
    expected = [record("a", 1, "x"), record("b", 2, "y"), record("c", 3, "z")]
    actual = [record("b", 2, "Y"), record("c", 4, "z"), record("d", 1, "w")]
    assert backups.compare(expected, actual) == [
        backups.Problem("missing", "a"),
        backups.Problem("sha256", "b"),
        backups.Problem("size", "c"),
        backups.Problem("extra", "d"),
    ]
    assert backups.compare(expected, expected) == []


TOC = """;
; Archive created at 2025-01-01 02:40:00 CST
;
4; 3079 16385 EXTENSION - btree_gist
4512; 0 0 COMMENT - EXTENSION btree_gist
2; 3079 16400 EXTENSION - postgis
4513; 0 0 COMMENT - EXTENSION postgis
226; 1259 16432 TABLE public registry_organization registry
227; 1259 16433 SEQUENCE public registry_organization_id_seq registry
4400; 0 16432 TABLE DATA public registry_organization registry
4578; 0 691480 TABLE DATA public spatial_ref_sys postgres
"""


def test_the_dumps_extensions_are_left_to_the_superuser():
    assert backups.toc_extensions(TOC) == ["btree_gist", "postgis"]
    kept = backups.toc_for_owner(TOC)
    assert "EXTENSION" not in kept
    assert "spatial_ref_sys" not in kept
    assert "226; 1259 16432 TABLE public registry_organization registry" in kept
    assert "4400; 0 16432 TABLE DATA public registry_organization registry" in kept
    assert backups.toc_tables(TOC) == {("public", "registry_organization")}


def test_the_database_password_goes_in_the_environment_only():
    environment = backups.postgres_environment(
        {
            "NAME": "registry",
            "USER": "registry",
            "PASSWORD": "s3cret",
            "HOST": "db",
            "PORT": 5432,
            "OPTIONS": {"sslmode": "require"},
        },
        {"PATH": "/usr/bin", "PGOPTIONS": "-c something"},
    )
    assert environment == {
        "PATH": "/usr/bin",
        "PGDATABASE": "registry",
        "PGUSER": "registry",
        "PGPASSWORD": "s3cret",
        "PGHOST": "db",
        "PGPORT": "5432",
        "PGSSLMODE": "require",
    }


# PostgreSQL: pg_dump and pg_restore ------------------------------------------------


@pytest.fixture
def recorded_commands(monkeypatch):
    """Every pg_dump / pg_restore command line, still run."""
    commands = []
    run = subprocess.run

    def record(arguments, **kwargs):
        arguments = list(arguments)
        listing = ""
        if "--use-list" in arguments:
            listing = Path(arguments[arguments.index("--use-list") + 1]).read_text()
        commands.append((arguments, kwargs.get("env", {}), listing))
        return run(arguments, **kwargs)

    monkeypatch.setattr(subprocess, "run", record)
    return commands


@pytest.mark.production_stack
def test_postgresql_restore_drops_newer_tables_and_grants_the_application_role(
    recorded_commands, small_backup, media
):
    assert connection.vendor == "postgresql"
    assert (small_backup / "database.dump").read_bytes()[:5] == b"PGDMP"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE registry_made_after_the_backup (id int)")

    restore(small_backup)

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('registry_made_after_the_backup')")
        assert cursor.fetchone()[0] is None
    assert Organization.objects.filter(name_en="Kept organization").exists()
    password = connection.settings_dict["PASSWORD"]
    for arguments, environment, _listing in recorded_commands:
        assert arguments[0] in ("pg_dump", "pg_restore")
        # Never on the command line (ps shows it): as an argument, a
        # connection string or an option.
        assert not any(
            argument == password
            or f":{password}@" in argument
            or f"password={password}" in argument
            for argument in arguments
        )
        assert environment["PGPASSWORD"] == password
    assert recorded_commands[0][0][:2] == [
        "pg_dump",
        "--format=custom",
    ]
    restore_line, _environment, listing = recorded_commands[-1]
    for option in ("--clean", "--if-exists", "--no-owner", "--single-transaction"):
        assert option in restore_line
    # The extensions stay the superuser's: the owner could not drop them.
    assert " TABLE public registry_organization " in listing
    assert " EXTENSION " not in listing
    assert " spatial_ref_sys " not in listing

    role = settings.DATABASE_APP_ROLE
    if not role:
        pytest.skip("DATABASE_APP_ROLE is not set (scripts/production_stack.sh)")
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"] or 5432,
        dbname=database["NAME"],
        user=role,
        password=os.environ.get("DATABASE_APP_PASSWORD", ""),
        autocommit=True,
    ) as app:
        names = app.execute("SELECT name_en FROM registry_organization").fetchall()
        # The ledger's functions were made again by the restore, with
        # PostgreSQL's default EXECUTE for PUBLIC: taken back by the grants.
        public_may_call = app.execute(
            "SELECT p.proname FROM pg_proc p WHERE p.proname IN"
            " ('trading_issue_blocks', 'trading_reserve', 'trading_settle',"
            " 'trading_release') AND has_function_privilege('public', p.oid,"
            " 'EXECUTE')"
        ).fetchall()
    assert ("Kept organization",) in names
    assert public_may_call == []


@pytest.mark.production_stack
def test_postgresql_restore_is_refused_without_the_dumps_extensions(
    small_backup, media, monkeypatch
):
    assert connection.vendor == "postgresql"
    OrganizationFactory(name_en="Made after the backup")
    monkeypatch.setattr(
        backups, "toc_extensions", lambda toc: ["postgis", "no_such_extension"]
    )
    with pytest.raises(CommandError, match="lacks the extensions no_such_extension"):
        restore(small_backup)
    assert Organization.objects.filter(name_en="Made after the backup").exists()


def test_media_changed_while_restoring_them_are_refused_and_change_nothing(
    small_backup, media, monkeypatch
):
    OrganizationFactory(name_en="Made after the backup")
    (media / "after.txt").write_text("new")
    files = media_files(media)
    copy = backups.copy_tree_described

    def copy_then_change(source, target, *, prefix):
        records = copy(source, target, prefix=prefix)
        return [*records[:-1], backups.FileRecord(records[-1].path, 1, "changed")]

    monkeypatch.setattr(backups, "copy_tree_described", copy_then_change)
    with pytest.raises(CommandError, match="changed while they were copied"):
        restore(small_backup)
    assert Organization.objects.filter(name_en="Made after the backup").exists()
    assert media_files(media) == files


# The production image -------------------------------------------------------------


def test_the_image_has_the_postgresql_client_of_the_servers_version():

    base = Path(settings.BASE_DIR)
    compose = yaml.safe_load((base / "docker-compose.yml").read_text())
    server_major = compose["services"]["db"]["image"].split(":")[1].split("-")[0]
    assert f"postgresql-client-{server_major}" in (base / "Dockerfile").read_text()
    maintenance = compose["services"]["maintenance"]
    # The owner restores (it re-creates the tables) and re-grants the app role.
    assert maintenance["environment"]["DATABASE_URL"].startswith("postgis://registry:")
    assert maintenance["environment"]["DATABASE_APP_ROLE"] == "registry_app"
    assert "media:/app/media" in maintenance["volumes"]
    assert maintenance["profiles"] == ["maintenance"]  # never started by `up`
