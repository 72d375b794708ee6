"""DATABASE_URL=spatialite:///... runs with the embedded default's SQLite
options (immediate transactions, a busy timeout, WAL), so concurrent writers
wait for each other instead of failing with "database is locked".

Settings are read once per process, so each case starts a fresh interpreter
with its own environment."""

import json
import os
import subprocess
import sys
import textwrap

from django.conf import settings

SHOW_SETTINGS = textwrap.dedent(
    """
    import json
    from config.settings import base

    print(json.dumps({
        "url": base.DATABASES["default"],
        "embedded": base._embedded_database(base.VAR_DIR / "x.sqlite3"),
    }, default=str))
    """
)

# Two threads each add 1 to a counter 150 times, reading it first: with
# deferred transactions the second writer's lock upgrade fails with
# "database is locked" (a busy timeout cannot help: both hold a read lock).
CONCURRENT_WRITERS = textwrap.dedent(
    """
    import json
    import threading
    import time

    import django

    django.setup()
    from django.db import connection, connections, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
        cursor.execute("INSERT INTO counter VALUES (1, 0)")
    connections.close_all()
    errors = []

    def add_one_repeatedly():
        try:
            for _ in range(150):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT value FROM counter WHERE id = 1")
                    (value,) = cursor.fetchone()
                    time.sleep(0.001)  # let the other writer read meanwhile
                    cursor.execute(
                        "UPDATE counter SET value = %s WHERE id = 1", [value + 1]
                    )
        except Exception as error:
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add_one_repeatedly) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM counter WHERE id = 1")
        (value,) = cursor.fetchone()
        cursor.execute("PRAGMA journal_mode")
        (journal_mode,) = cursor.fetchone()
    print(json.dumps({"errors": errors, "value": value, "journal": journal_mode}))
    """
)


def run_python(code: str, database_url: str) -> dict:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL"}
    }
    environment.update(
        DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings.test"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_spatialite_url_keeps_the_embedded_sqlite_options(tmp_path):
    shown = run_python(SHOW_SETTINGS, f"spatialite:///{tmp_path}/registry.sqlite3")
    database = shown["url"]
    assert database["ENGINE"] == "django.contrib.gis.db.backends.spatialite"
    assert database["NAME"] == f"{tmp_path}/registry.sqlite3"
    assert database["OPTIONS"] == shown["embedded"]["OPTIONS"]
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert database["OPTIONS"]["timeout"] >= 5
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


def test_a_postgis_url_keeps_its_connection_settings():
    shown = run_python(SHOW_SETTINGS, "postgis://user:secret@db.example:5432/registry")
    database = shown["url"]
    assert database["ENGINE"] == "django.contrib.gis.db.backends.postgis"
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    assert "transaction_mode" not in database.get("OPTIONS", {})


def test_concurrent_writers_on_a_spatialite_url_do_not_lock_each_other_out(
    tmp_path,
):
    result = run_python(
        CONCURRENT_WRITERS, f"spatialite:///{tmp_path}/concurrent.sqlite3"
    )
    assert result["errors"] == []
    assert result["value"] == 300  # no write lost either
    assert result["journal"] == "wal"
