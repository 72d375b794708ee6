"""The zh-Hans catalogue is complete and the language follows the browser."""

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

CATALOGUE = Path(settings.BASE_DIR) / "locale/zh_Hans/LC_MESSAGES/django.po"
SOURCES = [
    "config",
    "common",
    "api",
    "registry",
    "estimation",
    "trading",
    "public",
    "templates",
    "manage.py",
]


def _untranslated(po: polib.POFile) -> list[str]:
    return [
        entry.msgid
        for entry in po
        if not entry.obsolete and ("fuzzy" in entry.flags or not entry.translated())
    ]


def test_committed_catalogue_has_no_untranslated_or_fuzzy_entries():
    assert _untranslated(polib.pofile(str(CATALOGUE))) == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs gettext")
def test_every_string_in_the_source_is_in_the_catalogue(tmp_path):
    """makemessages on a copy of the tree adds nothing untranslated."""
    base = Path(settings.BASE_DIR)
    for name in SOURCES:
        source = base / name
        if source.is_dir():
            shutil.copytree(
                source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(base / "locale", tmp_path / "locale")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    regenerated = polib.pofile(str(tmp_path / "locale/zh_Hans/LC_MESSAGES/django.po"))
    assert _untranslated(regenerated) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("zh-CN,zh;q=0.9", "毕节市碳汇登记簿"),
        ("zh-TW", "毕节市碳汇登记簿"),
        ("zh", "毕节市碳汇登记簿"),
        ("en-US,en;q=0.9", "Bijie carbon-sink registry"),
        ("fr-FR", "Bijie carbon-sink registry"),
        ("", "Bijie carbon-sink registry"),
    ],
)
def test_language_follows_the_browser(client, accept_language, expected):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept_language)
    assert expected in response.content.decode()


@pytest.mark.django_db
def test_language_switch_overrides_the_browser(client):
    response = client.post(
        "/i18n/setlang/", {"language": "en", "next": "/"}, HTTP_ACCEPT_LANGUAGE="zh-CN"
    )
    assert response.status_code == 302
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "Bijie carbon-sink registry" in body
    assert '<html lang="en">' in body


def test_translation_functions_keep_names_makemessages_knows():
    """makemessages extracts only calls of gettext's own names and ``_``: a
    string marked through another alias (``gettext_lazy as _lazy``) never
    reaches the catalogue and is shown in English to everyone."""
    import ast

    base = Path(settings.BASE_DIR)
    renamed = []
    for name in SOURCES:
        source = base / name
        files = source.rglob("*.py") if source.is_dir() else [source]
        for path in files:
            if path.suffix != ".py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "django.utils.translation"
                ):
                    renamed += [
                        f"{path.relative_to(base)}: {alias.name} as {alias.asname}"
                        for alias in node.names
                        if alias.asname not in (None, "_")
                    ]
    assert renamed == []
