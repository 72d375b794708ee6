"""Dependencies run one way: estimation -> trading -> registry (design section 3)."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

FORBIDDEN = {
    "registry": {"estimation", "trading", "public"},
    "trading": {"estimation", "public"},
    # The public pages read every app; no app reads them.
    "estimation": {"public"},
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
