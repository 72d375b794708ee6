"""Schemathesis against the OpenAPI schema: generated requests, valid and not,
for every operation, in the coverage and fuzzing phases, with every check
Schemathesis has: no server error, every answer fits the schema, schema-valid
requests are accepted and schema-violating ones refused, missing credentials
refused, undeclared methods answered 405. The settings are the ones the
command line uses against a running demo (tests/api/schemathesis.toml).

Production-stack stage only (PostgreSQL is the stricter database: NUL bytes,
integer ranges). The requests go through the WSGI application in this process,
inside the test's transaction, as a registry admin who is also bureau staff and
a verifier, so the deepest paths are reached. A listing with its orders (one
awaiting payment, one settled and retired on delivery) is on the market, so
the market's lists answer with real objects for the response checks."""

import json
from datetime import date
from pathlib import Path

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from registry.models import Account
from registry.roles import Role
from tests.registry.projects import make_project
from trading import market as trading_market
from trading import services as trading_services

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


@pytest.fixture
def market(admin, staff, buyer, owner_org, buyer_org):
    seller_account = owner_org.accounts.get(kind=Account.Kind.HOLDING)
    buyer_account = buyer_org.accounts.get(kind=Account.Kind.HOLDING)
    batch = trading_services.issue_batch(
        actor=admin,
        project=make_project(actor=staff, owner=owner_org),
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=1000,
        buffer_quantity=100,
        holder_account=seller_account,
    )
    listing = trading_market.create_listing(
        actor=staff,
        account=seller_account,
        batch=batch,
        quantity=100,
        price_per_tonne="95",
        minimum_lot=1,
        idempotency_key="fuzz-listing",
    )
    order = {"actor": buyer, "listing": listing, "buyer_account": buyer_account}
    trading_market.place_order(quantity=10, idempotency_key="fuzz-order-1", **order)
    delivered = trading_market.place_order(
        quantity=5,
        idempotency_key="fuzz-order-2",
        retire_on_delivery=True,
        beneficiary="Buyer company",
        purpose="voluntary",
        reporting_year=2026,
        **order,
    )
    trading_market.confirm_payment(
        actor=staff,
        order=delivered,
        amount=delivered.amount,
        paid_on=timezone.localdate(),
        reference="ICBC-20261205-0042",
    )
    trading_services.approve_request(actor=admin, request=delivered.trade_request)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_answer_fits_the_schema(case, token, market):
    # No ``checks=``: every check the configuration enables, which is all.
    case.call_and_validate(headers={"Authorization": f"Token {token}"})
