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
    "estimation/survey_geometry.py",
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


def test_each_known_string_reference_is_still_there():
    """An entry whose reference has gone is removed, so it cannot hide a new one."""
    stale = {
        known: labels
        for known, labels in KNOWN_STRING_REFERENCES.items()
        if not labels
        <= _referenced_labels((Path(settings.BASE_DIR).joinpath(*known)).read_text())
    }
    assert stale == {}


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


# One rule, one home (issue 14) ------------------------------------------------
# Quantities, money and rounding live in common/quantities.py, the ellipsoid and
# the TIFF signature in common/geodesy.py, form helpers in common/forms.py and
# the reading of a typed serial in trading/serials.py. A second copy drifts
# (half-even here, half-up there; 15 digits here, 18 there), so none may appear.

KERNEL_SCOPE = APPS | {"api", "common", WIRING}
QUANTITIES = Path("common/quantities.py")
GEODESY = Path("common/geodesy.py")
FORM_HELPERS = Path("common/forms.py")
SERIALS = Path("trading/serials.py")
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# A pattern that is a bounded run of digits and nothing else: how the second
# serial parser was written (numbers inside longer patterns are other things).
DIGIT_RUN = re.compile(r"\^?(\[0-9\]|\\d)\{1,\d+\}\$?")
HOMES = {
    QUANTITIES: {
        "hectares",
        "area_ha",
        "money",
        "parse_price",
        "floor_tonnes",
        "share_from_percent",
        "percent_from_share",
    },
    GEODESY: {"geodesic_area_m2", "ring_area_m2", "is_tiff"},
    FORM_HELPERS: {"IsoDateInput", "add_service_errors"},
    SERIALS: {"parse_serial"},
}


def _duplicates(source: str, relative: Path) -> list[str]:
    """What ``source`` (the file at ``relative``) computes that has a home
    elsewhere, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if relative != QUANTITIES:
            if isinstance(node, ast.Attribute) and node.attr == "quantize":
                found.append(f"{line}: .quantize")
            if isinstance(node, ast.Name | ast.alias):
                name = node.id if isinstance(node, ast.Name) else node.name
                if name.startswith("ROUND_"):
                    found.append(f"{line}: {name}")
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and node.right.value in (100, 10_000)
            ):
                found.append(f"{line}: / {node.right.value}")
        if relative != GEODESY:
            if (isinstance(node, ast.Attribute) and node.attr == "Geod") or (
                isinstance(node, ast.alias) and node.name == "Geod"
            ):
                found.append(f"{line}: Geod")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, bytes)
                and node.value.startswith(TIFF_SIGNATURES)
            ):
                found.append(f"{line}: TIFF signature")
        if (
            relative != SERIALS
            and relative.parts[0] in APPS
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and DIGIT_RUN.fullmatch(node.value)
        ):
            found.append(f"{line}: digit pattern")
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            for home, names in HOMES.items():
                if relative != home and node.name in names:
                    found.append(f"{line}: {node.name} (home: {home})")
    return found


def test_duplicates_are_found():
    source = """
import pyproj
from decimal import ROUND_HALF_EVEN
from pyproj import Geod
GEOD = pyproj.Geod(ellps="WGS84")
price = value.quantize(CENTS)
share = percent / 100
ha = m2 / 10_000
MAGIC = (b"II*\\x00", b"MM\\x00*")
SERIAL = re.compile(r"^[0-9]{1,15}$")
OTHER = r"\\d{1,18}"
def parse_serial(text): ...
def hectares(m2): ...
class IsoDateInput: ...
"""
    found = _duplicates(source, Path("public/api/views.py"))
    assert sorted(item.split(": ", 1)[1] for item in found) == sorted(
        [
            "ROUND_HALF_EVEN",
            "Geod",
            "Geod",
            ".quantize",
            "/ 100",
            "/ 10000",
            "TIFF signature",
            "TIFF signature",
            "digit pattern",
            "digit pattern",
            "parse_serial (home: trading/serials.py)",
            "hectares (home: common/quantities.py)",
            "IsoDateInput (home: common/forms.py)",
        ]
    )
    # In its home each is allowed; a digit pattern outside the apps is not a serial.
    assert _duplicates("x = v.quantize(P)", QUANTITIES) == []
    assert _duplicates('G = pyproj.Geod(ellps="WGS84")', GEODESY) == []
    assert _duplicates('ID = r"[0-9]{1,18}"', Path("api/viewsets.py")) == []
    assert (
        _duplicates('BOX = r"^-?[0-9]{1,3}(,[0-9]{1,3})$"', Path("registry/a.py")) == []
    )
    assert _duplicates("percent = int(fraction * 100)", Path("estimation/x.py")) == []


def test_each_rule_has_one_home():
    offenders = {
        str(relative): found
        for relative, path in _source_files()
        if relative.parts[0] in KERNEL_SCOPE
        and "migrations" not in relative.parts
        and (found := _duplicates(path.read_text(), relative))
    }
    assert offenders == {}


@pytest.mark.parametrize("home", sorted(HOMES, key=str))
def test_each_home_defines_what_it_is_the_home_of(home):
    tree = ast.parse((Path(settings.BASE_DIR) / home).read_text())
    defined = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    assert HOMES[home] <= defined
