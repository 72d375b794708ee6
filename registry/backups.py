"""The manifest of a backup (``manage.py backup`` / ``restore``): plain values,
no Django. A backup folder holds the database (``database.dump`` from
pg_dump, or ``database.sqlite3``), the media files under ``media/`` and
``manifest.json``, written last: a folder without a manifest is a backup that
never finished. The manifest names every file with its size and SHA-256, so a
restore can refuse a backup that lost, gained or changed a file.

Problems are reported as codes with the path at fault; the commands turn them
into translated sentences."""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MEDIA_FOLDER = "media"
DATABASE_FILES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
_CHUNK = 1024 * 1024


class ManifestError(Exception):
    """The manifest is missing or unreadable; ``code`` says which."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the backup folder, "/"-separated
    size: int
    sha256: str


@dataclass(frozen=True)
class Problem:
    code: str  # "missing", "extra", "size", "sha256"
    path: str


def is_inside(folder: Path, root: Path) -> bool:
    """Whether ``folder`` is ``root`` or lies under it (links resolved)."""
    folder, root = folder.resolve(), root.resolve()
    return folder == root or root in folder.parents


def describe_file(path: Path, relative: str) -> FileRecord:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileRecord(path=relative, size=size, sha256=digest.hexdigest())


def _relative(root: Path, path: Path) -> str:
    return PurePosixPath(*path.relative_to(root).parts).as_posix()


def _walk_files(root: Path):
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        for name in sorted(names):
            yield Path(folder) / name


def describe_folder(root: Path, *, leave_out: frozenset[str] = frozenset()) -> list:
    """Every file under ``root`` (by path relative to it, sorted), except the
    relative paths in ``leave_out``."""
    records = [describe_file(path, _relative(root, path)) for path in _walk_files(root)]
    return [record for record in records if record.path not in leave_out]


def copy_tree_described(source: Path, target: Path, *, prefix: str) -> list:
    """Copy every file under ``source`` into ``target`` (made here), hashing
    the bytes as they are written, so each record describes the copy, not a
    source that may change meanwhile. Paths are ``prefix``/relative path."""
    target.mkdir(parents=True, exist_ok=False)
    records = []
    if not source.is_dir():
        return records
    for path in _walk_files(source):
        relative = _relative(source, path)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as reader, open(destination, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        shutil.copystat(path, destination)
        records.append(
            FileRecord(
                path=f"{prefix}/{relative}", size=size, sha256=digest.hexdigest()
            )
        )
    return records


def build_manifest(
    *,
    created_at: str,
    vendor: str,
    migrations: dict[str, str],
    files: list,
) -> dict:
    return {
        "format": FORMAT_VERSION,
        "created_at": created_at,
        "database": {"vendor": vendor, "file": DATABASE_FILES[vendor]},
        "migrations": dict(sorted(migrations.items())),
        "files": [
            {"path": record.path, "size": record.size, "sha256": record.sha256}
            for record in sorted(files, key=lambda record: record.path)
        ],
    }


def write_manifest(folder: Path, manifest: dict) -> None:
    """Written to a temporary name and renamed, so a manifest is whole or absent."""
    temporary = folder / (MANIFEST_NAME + ".partial")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(temporary, folder / MANIFEST_NAME)


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value)


def _valid_record(item) -> bool:
    return (
        isinstance(item, dict)
        and _is_text(item.get("path"))
        and isinstance(item.get("size"), int)
        and not isinstance(item.get("size"), bool)
        and _is_text(item.get("sha256"))
    )


def read_manifest(folder: Path) -> dict:
    """The manifest of the backup in ``folder``; ManifestError "missing" when
    there is none, "unreadable" when it is not a manifest of this format."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError("missing")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError("unreadable", str(error)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise ManifestError("unreadable", "format")
    database = manifest.get("database")
    migrations = manifest.get("migrations")
    files = manifest.get("files")
    if (
        not isinstance(database, dict)
        or database.get("vendor") not in DATABASE_FILES
        or database.get("file") != DATABASE_FILES[database["vendor"]]
        or not isinstance(migrations, dict)
        or not all(_is_text(k) and _is_text(v) for k, v in migrations.items())
        or not isinstance(files, list)
        or not all(_valid_record(item) for item in files)
    ):
        raise ManifestError("unreadable", "fields")
    return manifest


def manifest_records(manifest: dict) -> list:
    return [
        FileRecord(path=item["path"], size=item["size"], sha256=item["sha256"])
        for item in manifest["files"]
    ]


def compare(expected: list, actual: list) -> list:
    """What differs between the files a manifest lists and those found:
    missing, extra, or changed (size first, then SHA-256), sorted by path."""
    wanted = {record.path: record for record in expected}
    found = {record.path: record for record in actual}
    problems = [Problem("missing", path) for path in wanted.keys() - found.keys()]
    problems += [Problem("extra", path) for path in found.keys() - wanted.keys()]
    for path in wanted.keys() & found.keys():
        if wanted[path].size != found[path].size:
            problems.append(Problem("size", path))
        elif wanted[path].sha256 != found[path].sha256:
            problems.append(Problem("sha256", path))
    return sorted(problems, key=lambda problem: (problem.path, problem.code))


def check_folder(folder: Path, manifest: dict) -> list:
    """The problems of the backup in ``folder`` against its manifest, the
    database file included (it must be listed like any other)."""
    actual = describe_folder(folder, leave_out=frozenset({MANIFEST_NAME}))
    expected = manifest_records(manifest)
    problems = compare(expected, actual)
    database_file = manifest["database"]["file"]
    if database_file not in {record.path for record in expected}:
        problems.append(Problem("missing", database_file))
    return problems


def unknown_migrations(backup: dict[str, str], known: set[tuple[str, str]]) -> list:
    """The (app, migration) pairs the backup's database has applied last that
    this code does not have: a backup made by a newer version."""
    return sorted(
        (app, name) for app, name in backup.items() if (app, name) not in known
    )


# PostgreSQL ----------------------------------------------------------------------

# Connection settings go to pg_dump/pg_restore as libpq's environment
# variables: nothing (the password least of all) on a command line that `ps`
# shows to every user of the machine.
_LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}


def postgres_environment(database: dict, base: dict) -> dict:
    """``base`` (the process environment) with libpq's variables for the
    Django database settings ``database``."""
    environment = {
        key: value for key, value in base.items() if not key.startswith("PG")
    }
    for setting, variable in (
        ("NAME", "PGDATABASE"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
    ):
        if database.get(setting):
            environment[variable] = str(database[setting])
    for option, variable in _LIBPQ_OPTIONS.items():
        value = (database.get("OPTIONS") or {}).get(option)
        if value:
            environment[variable] = str(value)
    return environment


def _toc_fields(line: str) -> list[str]:
    # "<dump id>; <catalog oid> <oid> <type...> <schema> <name> <owner>"
    if line.startswith(";") or ";" not in line:
        return []
    return line.split(";", 1)[1].split()


def toc_extensions(toc: str) -> list[str]:
    """The extensions a dump's table of contents (``pg_restore --list``) creates."""
    names = []
    for line in toc.splitlines():
        fields = _toc_fields(line)
        if len(fields) >= 5 and fields[2] == "EXTENSION":
            names.append(fields[4])
    return names


def toc_for_owner(toc: str) -> str:
    """The table of contents without what belongs to the cluster's superuser:
    the extensions, their comments and the rows of their own tables (PostGIS's
    spatial_ref_sys, to which the registry adds none). The superuser made them
    in the target database already; the owner who restores could neither drop
    nor write them."""
    tables = toc_tables(toc)
    kept = []
    for line in toc.splitlines():
        fields = _toc_fields(line)
        kind = fields[2:4]
        is_extension = kind[:1] == ["EXTENSION"]
        is_extension_comment = kind == ["COMMENT", "-"] and fields[4:5] == ["EXTENSION"]
        is_extension_data = kind == ["TABLE", "DATA"] and (
            tuple(fields[4:6]) not in tables
        )
        if not (is_extension or is_extension_comment or is_extension_data):
            kept.append(line)
    return "\n".join(kept) + "\n"


def toc_tables(toc: str) -> set[tuple[str, str]]:
    """The (schema, table) pairs a dump makes."""
    tables = set()
    for line in toc.splitlines():
        fields = _toc_fields(line)
        # A table's entry is a pg_class (1259) row; "TABLE DATA" has none.
        if len(fields) >= 5 and fields[0] == "1259" and fields[2] == "TABLE":
            tables.add((fields[3], fields[4]))
    return tables
