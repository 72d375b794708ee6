"""Dependencies run one way: public -> estimation -> trading -> registry ->
common, with api beside common (apps' api/ packages use it); nothing imports
config, the wiring (design section 3). Checked for imports and for the
strings that name another app's models ("app.Model", get_model("app", ...))."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings

APPS = {"registry", "trading", "estimation", "public"}
WIRING = "config"
FORBIDDEN = {
    "registry": {"estimation", "trading", "public"},
    "trading": {"estimation", "public"},
    # The public pages read every app; no app reads them.
    "estimation": {"public"},
    "public": set(),
    # The shared kernel, which every app may use, uses none of them.
    "common": APPS | {"api"},
    # The REST plumbing sits beside the kernel: it may use common, no app
    # (the user model it names through settings.AUTH_USER_MODEL).
    "api": APPS,
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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_nothing_imports_the_wiring(package):
    base = Path(settings.BASE_DIR) / package
    offenders = [
        str(path.relative_to(base))
        for path in base.rglob("*.py")
        if WIRING in _imported_top_levels(path)
    ]
    assert offenders == []


@pytest.mark.parametrize("app", sorted(APPS))
def test_only_an_apps_api_package_imports_the_rest_plumbing(app):
    base = Path(settings.BASE_DIR) / app
    offenders = [
        str(path.relative_to(base))
        for path in base.rglob("*.py")
        if path.relative_to(base).parts[0] != "api"
        and "api" in _imported_top_levels(path)
    ]
    assert offenders == []


# "app.Model", "app.view_model", "app.tasks.name": a dotted name led by a label.
DOTTED_REFERENCE = re.compile(r"([a-z_]+)\.[A-Za-z_][\w.]*")
LABELS = APPS | {"api", "common", WIRING}
# Strings against the direction that are known and allowed, each with its
# reason (none today: every app declares its own roles' permissions).
KNOWN_STRING_REFERENCES: dict[tuple[str, str], set[str]] = {}


def _referenced_labels(source: str) -> set[str]:
    """The app labels that string constants in ``source`` name: dotted
    references and ``get_model("label", ...)``."""
    labels = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = DOTTED_REFERENCE.fullmatch(node.value)
            if match and match.group(1) in LABELS:
                labels.add(match.group(1))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "get_model"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in LABELS
        ):
            labels.add(node.args[0].value)
    return labels


def test_string_references_are_found():
    source = """
batch = models.ForeignKey("trading.CreditBatch", on_delete=models.PROTECT)
owner = models.ForeignKey(to="registry.organization", on_delete=models.PROTECT)
Run = apps.get_model("estimation", "EstimationRun")
permission = "public.view_page"
settings_value = "config.settings.base"
"""
    assert _referenced_labels(source) == {
        "trading",
        "registry",
        "estimation",
        "public",
        WIRING,
    }
    assert _referenced_labels('message = "See trading. Then"') == set()


def _string_offenders(package: str) -> dict[str, list[str]]:
    """Files of ``package`` naming, by string, a package it may not import.
    Migrations are left out: they record history (a model that moved between
    apps is created in one and deleted from the other) and import nothing."""
    base = Path(settings.BASE_DIR) / package
    forbidden = FORBIDDEN[package] | {WIRING}
    offenders = {}
    for path in base.rglob("*.py"):
        relative = path.relative_to(base)
        if "migrations" in relative.parts:
            continue
        labels = set(forbidden)
        if package in APPS and relative.parts[0] != "api":
            labels.add("api")
        named = _referenced_labels(path.read_text()) & labels
        named -= KNOWN_STRING_REFERENCES.get((package, str(relative)), set())
        if named:
            offenders[str(relative)] = sorted(named)
    return offenders


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_string_references_run_the_same_way_as_imports(package):
    assert _string_offenders(package) == {}


@pytest.mark.parametrize("known", sorted(KNOWN_STRING_REFERENCES))
def test_each_known_string_reference_is_still_there(known):
    """An entry whose reference has gone is removed, so it cannot hide a new one."""
    package, relative = known
    path = Path(settings.BASE_DIR) / package / relative
    assert KNOWN_STRING_REFERENCES[known] <= _referenced_labels(path.read_text())


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
