import itertools
from collections import Counter
from datetime import date

import pytest

from registry import services as registry_services
from registry.models import Organization
from registry.roles import Role
from tests.registry.projects import make_project
from trading import services

_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys)}"


@pytest.fixture
def seller_org(db):
    return registry_services.create_organization(
        name_zh="林场",
        name_en="Forest farm",
        kind=Organization.Kind.PROJECT_OWNER,
        uscc="N2520521MF01947364",
    )


@pytest.fixture
def buyer_org(db):
    return registry_services.create_organization(
        name_zh="买方公司",
        name_en="Buyer company",
        kind=Organization.Kind.BUYER,
        uscc="91520100MA6H3QW5LD",
    )


@pytest.fixture
def seller(make_user, seller_org):
    return make_user(role=Role.BUREAU_STAFF, organization=seller_org)


@pytest.fixture
def buyer(make_user, buyer_org):
    return make_user(role=Role.BUYER, organization=buyer_org)


@pytest.fixture
def seller_account(seller_org):
    return seller_org.accounts.get(kind="holding")


@pytest.fixture
def buyer_account(buyer_org):
    return buyer_org.accounts.get(kind="holding")


@pytest.fixture
def project(seller, seller_org):
    return make_project(actor=seller, owner=seller_org)


@pytest.fixture
def issue(admin, project, seller_account, operator):
    """Issue a batch of the test project. A monitoring period is issued once, so
    a second batch of the same vintage covers the year before, and so on."""
    issued = Counter()

    def make(quantity=1000, buffer=100, vintage=2025, holder=None):
        year = vintage - issued[vintage]
        issued[vintage] += 1
        return services.issue_batch(
            actor=admin,
            project=project,
            vintage=vintage,
            monitoring_start=date(year, 1, 1),
            monitoring_end=date(year, 12, 31),
            quantity=quantity,
            buffer_quantity=buffer,
            holder_account=holder or seller_account,
        )

    return make


# The market -------------------------------------------------------------------


@pytest.fixture
def batch(issue):
    return issue(quantity=1000, buffer=100)  # 900 t to the seller


@pytest.fixture
def listing(seller, seller_account, batch):
    """200 t of the batch at 95 CNY, in lots of at least 10 t."""
    from trading import market

    return market.create_listing(
        actor=seller,
        account=seller_account,
        batch=batch,
        quantity=200,
        price_per_tonne="95",
        minimum_lot=10,
        idempotency_key=new_key(),
    )


def order_from(buyer, buyer_account, listing, quantity=50, **extra):
    """A buyer's order through trading.market (a fresh key unless ``key``)."""
    from trading import market

    return market.place_order(
        actor=buyer,
        listing=listing,
        buyer_account=buyer_account,
        quantity=quantity,
        idempotency_key=extra.pop("key", None) or new_key(),
        **extra,
    )


def confirm_payment(seller, order, **extra):
    """The seller's confirmation of the full amount, paid today."""
    from django.utils import timezone

    from trading import market

    values = {
        "amount": order.amount,
        "paid_on": timezone.localdate(),
        "reference": "ICBC-20261205-0042",
    }
    values.update(extra)
    return market.confirm_payment(actor=seller, order=order, **values)
