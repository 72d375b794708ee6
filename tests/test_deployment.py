"""Production configuration: `check --deploy`, docker compose, the Dockerfile."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

BASE = Path(settings.BASE_DIR)
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k3y-for-the-deploy-check-0123456789-abcdefghijklmnopqrstuv",
    "ALLOWED_HOSTS": "registry.example.cn",
    "DATABASE_URL": "postgis://registry:secret@db:5432/registry",
    "REDIS_URL": "redis://redis:6379/0",
    # Base64 of a raw Ed25519 key (test only): signs the published journal heads.
    "LEDGER_SIGNING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
}


def _manage(*args, env_overrides=None):
    # Only the deployment's own variables: nothing the test run itself set.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and not k.startswith("DJANGO_")
    }
    env.update(env_overrides if env_overrides is not None else PRODUCTION_ENV)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE,
        env=env,
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = dict(PRODUCTION_ENV)
    del env["SECRET_KEY"]
    result = _manage("check", env_overrides=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_refuse_demo_data():
    result = _manage("load_bijie_demo")
    assert result.returncode != 0
    assert "production" in result.stderr


def test_production_settings_refuse_flush():
    result = _manage("flush", "--noinput")
    assert result.returncode != 0
    assert "flush is refused" in result.stderr
    assert "LEDGER_PURGE_ALLOWED" in result.stderr


def _compose():
    return yaml.safe_load((BASE / "docker-compose.yml").read_text())


def test_compose_has_the_production_services_with_health_checks():
    services = _compose()["services"]
    assert {"db", "redis", "web", "worker", "beat", "migrate"} <= set(services)
    assert services["db"]["image"].startswith("postgis/postgis:15-3")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("db", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_web_worker_and_beat_share_one_image_and_the_environment():
    services = _compose()["services"]
    images = {services[name]["image"] for name in ("web", "worker", "beat", "migrate")}
    assert len(images) == 1
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        for variable in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
            assert environment[variable], (name, variable)
        assert environment["DATABASE_URL"].startswith("postgis://")
        assert "@db:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:6379")


def test_media_and_database_live_in_volumes_and_web_waits_for_migrations():
    compose = _compose()
    services = compose["services"]
    assert {"pgdata", "media"} <= set(compose["volumes"])
    assert any(v.startswith("media:") for v in services["web"]["volumes"])
    assert any(v.startswith("media:") for v in services["worker"]["volumes"])
    assert any(v.startswith("pgdata:") for v in services["db"]["volumes"])
    assert (
        services["web"]["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )
    assert services["web"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_lock_and_builds_static_files():
    dockerfile = (BASE / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile
    assert "compilemessages" in dockerfile
    assert "libgdal32" in dockerfile
    assert dockerfile.splitlines()[1].startswith("FROM python:3.11")


INIT_SCRIPT = "docker/postgres-init/20-registry-roles.sh"


def _database_user(service) -> str:
    # Not urlsplit: the password is a ${...:?message} substitution.
    return re.match(r"postgis://([^:@/]+):", service["environment"]["DATABASE_URL"])[1]


def test_migrate_connects_as_the_owner_and_the_app_services_as_the_app_role():
    services = _compose()["services"]
    owner = _database_user(services["migrate"])
    app_role = services["migrate"]["environment"]["DATABASE_APP_ROLE"]
    assert owner == "registry"
    assert app_role == "registry_app"
    assert (
        "${DATABASE_OWNER_PASSWORD"
        in services["migrate"]["environment"]["DATABASE_URL"]
    )
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert _database_user(services[name]) == app_role, name
        assert "${DATABASE_APP_PASSWORD" in environment["DATABASE_URL"], name
        # Only the owner grants; the application role never migrates.
        assert "DATABASE_APP_ROLE" not in environment, name
        assert services[name]["command"][:3] != ["python", "manage.py", "migrate"]
    # No service connects as the cluster's superuser.
    superuser = services["db"]["environment"]["POSTGRES_USER"]
    for name in ("migrate", "web", "worker", "beat"):
        assert _database_user(services[name]) not in (superuser, "postgres"), name


def test_the_db_service_creates_both_roles_from_its_init_script():
    db = _compose()["services"]["db"]
    assert any(
        volume.startswith(f"./{INIT_SCRIPT}:/docker-entrypoint-initdb.d/")
        for volume in db["volumes"]
    )
    # A mounted directory would hide the image's own PostGIS script.
    assert not any(
        volume.split(":")[1] == "/docker-entrypoint-initdb.d"
        for volume in db["volumes"]
    )
    for variable in ("DATABASE_OWNER_PASSWORD", "DATABASE_APP_PASSWORD"):
        assert f"${{{variable}" in db["environment"][variable]
    script = BASE / INIT_SCRIPT
    assert os.access(script, os.X_OK)  # executed, not sourced, by the entrypoint
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "CREATE ROLE registry LOGIN" in text
    assert "CREATE ROLE registry_app LOGIN" in text
    app_alter = re.search(r"ALTER ROLE registry_app ([^;]*);", text).group(1)
    for attribute in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOBYPASSRLS"):
        assert attribute in app_alter
    assert "PASSWORD :'app_password'" in app_alter
    # The application role owns nothing and is no member of the owner.
    assert not re.search(r"OWNER TO registry_app", text)
    assert not re.search(r"GRANT\s+registry\s+TO", text)
    assert not re.search(
        r"ALTER ROLE registry_app[^;]*\bSUPERUSER", text.replace("NOSUPERUSER", "")
    )
    assert 'ALTER DATABASE :"db" OWNER TO registry;' in text


def test_env_example_documents_both_database_passwords():
    example = (BASE / ".env.example").read_text()
    for variable in ("DATABASE_OWNER_PASSWORD", "DATABASE_APP_PASSWORD"):
        assert re.search(rf"^{variable}=", example, re.MULTILINE), variable
