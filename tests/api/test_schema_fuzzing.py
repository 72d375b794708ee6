"""Schemathesis against the OpenAPI schema: generated requests, valid and not,
for every operation, in the coverage and fuzzing phases, with every check
Schemathesis has: no server error, every answer fits the schema, schema-valid
requests are accepted and schema-violating ones refused, missing credentials
refused, undeclared methods answered 405. The settings are the ones the
command line uses against a running demo (tests/api/schemathesis.toml).

Production-stack stage only (PostgreSQL is the stricter database: NUL bytes,
integer ranges). The requests go through the WSGI application in this process,
inside the test's transaction, as a registry admin who is also bureau staff and
a verifier, so the deepest paths are reached."""

import json
from pathlib import Path

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from registry.roles import Role

pytestmark = [pytest.mark.production_stack, pytest.mark.django_db]

CONFIG = Path(__file__).with_name("schemathesis.toml")


def _load_schema():
    """The schema as the API serves it (generated here: collection has no
    database), bound to the WSGI application."""
    document = json.loads(
        OpenApiJsonRenderer().render(
            SchemaGenerator().get_schema(request=None, public=True)
        )
    )
    config = SchemathesisConfig.from_path(CONFIG)
    loaded = schemathesis.openapi.from_dict(document, config=config)
    loaded.app = WSGIHandler()
    return loaded


schema = _load_schema()


@pytest.fixture(autouse=True)
def keep_the_test_transaction(db, reference_data):
    """As Django's test client does: a request's start and end must not close
    the connection that holds the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def token(make_user, operator, owner_org):
    user = make_user(role=Role.REGISTRY_ADMIN, organization=operator)
    from registry import services

    services.grant_role(user=user, role=Role.BUREAU_STAFF)
    services.grant_role(user=user, role=Role.VERIFIER)
    services.add_member(user=user, organization=owner_org)
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_answer_fits_the_schema(case, token):
    # No ``checks=``: every check the configuration enables, which is all.
    case.call_and_validate(headers={"Authorization": f"Token {token}"})
