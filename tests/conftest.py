import os
import shutil
import tempfile

import pytest

from registry.roles import Role
from tests.registry.factories import MembershipFactory, OrganizationFactory, UserFactory

# A mutation run (scripts/mutation.sh) starts pytest once per mutant; migrating a
# new test database each time would be most of the run. The script migrates one
# template first (a SpatiaLite file, or a PostgreSQL database for the pass that
# runs the ledger's PL/pgSQL path) and each run works on its own copy.
_MUTATION_DB_TEMPLATE = os.environ.get("MUTATION_DB_TEMPLATE")
if _MUTATION_DB_TEMPLATE:

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_blocker):
        from django.db import connections

        connection = connections["default"]
        with django_db_blocker.unblock():
            connection.close()
        if connection.vendor == "postgresql":
            copy = _postgresql_copy(connection, _MUTATION_DB_TEMPLATE)
        else:
            copy = _sqlite_copy(_MUTATION_DB_TEMPLATE)
        connection.settings_dict["NAME"] = copy.name
        yield
        with django_db_blocker.unblock():
            connection.close()
            copy.drop()


class _sqlite_copy:
    def __init__(self, template: str):
        handle, self.name = tempfile.mkstemp(prefix="mutant-", suffix=".sqlite3")
        os.close(handle)
        shutil.copyfile(template, self.name)

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.name + suffix):
                os.unlink(self.name + suffix)


class _postgresql_copy:
    # CREATE DATABASE ... TEMPLATE copies the migrated schema, its functions and
    # triggers in about a second.
    def __init__(self, connection, template: str):
        import psycopg

        self.name = f"mutant_{os.getpid()}"
        settings = connection.settings_dict
        self._connect = lambda: psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"],
            dbname="postgres",
            autocommit=True,
        )
        with self._connect() as maintenance:
            maintenance.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            maintenance.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template}"')

    def drop(self) -> None:
        with self._connect() as maintenance:
            maintenance.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the site's default language: a request in Chinese
    leaves its language active in the thread (LocaleMiddleware does not reset
    it), which would otherwise reach the next test's messages."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def make_user(db):
    """A user with ``role`` acting for ``organization`` (a new one if omitted)."""

    def make(role: Role | None = None, organization=None, **fields):
        user = UserFactory(**fields)
        if role is not None:
            from registry.services import grant_role

            grant_role(user=user, role=role)
        MembershipFactory(user=user, organization=organization or OrganizationFactory())
        return user

    return make


@pytest.fixture
def operator(db):
    """The registry operator, with its buffer-pool, retirement and cancellation
    accounts."""
    from registry import services as registry_services
    from registry.models import Organization

    return registry_services.create_organization(
        name_zh="登记中心",
        name_en="Registry operator",
        kind=Organization.Kind.REGISTRY_OPERATOR,
        uscc="12520500MB18360416",
    )


@pytest.fixture
def admin(make_user, operator):
    return make_user(role=Role.REGISTRY_ADMIN, organization=operator)


@pytest.fixture
def second_admin(make_user, operator):
    return make_user(role=Role.REGISTRY_ADMIN, organization=operator)


@pytest.fixture
def reference_data(db):
    """Bijie's divisions and the seeded schemes and methodologies, which a
    transactional test's flush removes along with everything else."""
    from estimation import models as estimation_models
    from estimation.seeds import load_seeds
    from registry.divisions import load_divisions
    from registry.models import AdministrativeDivision

    if not AdministrativeDivision.objects.exists():
        load_divisions(AdministrativeDivision)
    if not estimation_models.Methodology.objects.exists():
        load_seeds(
            scheme_model=estimation_models.ClassScheme,
            mapping_model=estimation_models.ClassMapping,
            methodology_model=estimation_models.Methodology,
            coefficient_model=estimation_models.Coefficient,
        )
