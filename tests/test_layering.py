"""Dependencies run one way: estimation -> trading -> registry -> common
(design section 3)."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

APPS = {"registry", "trading", "estimation", "public", "config"}
FORBIDDEN = {
    "registry": {"estimation", "trading", "public"},
    "trading": {"estimation", "public"},
    # The public pages read every app; no app reads them.
    "estimation": {"public"},
    # The shared kernel, which every app may use, uses none of them.
    "common": APPS,
}
# Pure computation modules may not import Django at all.
PURE_MODULES = [
    "registry/uscc.py",
    "estimation/calculations.py",
    "estimation/area.py",
    "public/figures.py",
]


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_app_does_not_import_apps_above_it(app):
    base = Path(settings.BASE_DIR) / app
    offenders = {
        str(path.relative_to(base)): sorted(_imported_top_levels(path) & FORBIDDEN[app])
        for path in base.rglob("*.py")
        if _imported_top_levels(path) & FORBIDDEN[app]
    }
    assert offenders == {}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_have_no_django_imports(module):
    path = Path(settings.BASE_DIR) / module
    assert "django" not in _imported_top_levels(path)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_common_imports_no_django_model():
    """The shared kernel defines and loads no models: importing it never needs
    the app registry."""
    base = Path(settings.BASE_DIR) / "common"
    offenders = {
        str(path.relative_to(base)): sorted(
            name
            for name in _imported_modules(path)
            if name.startswith(("django.db", "django.contrib"))
            or name.endswith(".models")
        )
        for path in base.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
    assert not (base / "models.py").exists()


CSV_HELPER = Path("common/spreadsheets.py")
SOURCE_SKIPPED = {".venv", "tests", "var", "node_modules"}


def _source_files():
    base = Path(settings.BASE_DIR)
    for path in base.rglob("*.py"):
        relative = path.relative_to(base)
        if relative.parts[0] in SOURCE_SKIPPED or relative.parts[0].startswith("."):
            continue
        yield relative, path


def _raw_csv_writers(path: Path) -> list[int]:
    """Lines that make a csv writer directly instead of through the helper."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"writer", "DictWriter"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "csv"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "csv"
            and {alias.name for alias in node.names} & {"writer", "DictWriter"}
        ):
            lines.append(node.lineno)
    return lines


def test_every_csv_export_writes_through_the_formula_safe_helper():
    """A new export that used csv.writer itself would let a beneficiary such as
    =HYPERLINK(...) reach a spreadsheet as a formula."""
    offenders = {
        str(relative): lines
        for relative, path in _source_files()
        if relative != CSV_HELPER and (lines := _raw_csv_writers(path))
    }
    assert offenders == {}
    assert _raw_csv_writers(Path(settings.BASE_DIR) / CSV_HELPER)  # the one place
