"""Fixtures for the REST API: organizations with their accounts, one user per
role, API clients signed in with real tokens, and the throttles' memory."""

import itertools

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from registry import services as registry_services
from registry.models import Organization
from registry.roles import Role
from tests.registry.factories import OrganizationFactory

_caches = itertools.count()


@pytest.fixture(autouse=True)
def fresh_throttles(monkeypatch):
    """Each test counts its own requests: a private cache for the throttles
    (the shared one is Redis in the production-stack stage)."""
    monkeypatch.setattr(
        SimpleRateThrottle, "cache", LocMemCache(f"throttle-{next(_caches)}", {})
    )


def _with_holding_account(organization):
    registry_services.open_account(organization=organization, kind="holding")
    return organization


@pytest.fixture
def owner_org(db):
    return _with_holding_account(OrganizationFactory(name_en="Village collective"))


@pytest.fixture
def other_org(db):
    return _with_holding_account(OrganizationFactory(name_en="Other forest farm"))


@pytest.fixture
def verifier_org(db):
    return OrganizationFactory(
        name_en="Independent verifier", kind=Organization.Kind.VERIFIER
    )


@pytest.fixture
def buyer_org(db):
    return _with_holding_account(
        OrganizationFactory(name_en="Buyer company", kind=Organization.Kind.BUYER)
    )


@pytest.fixture
def staff(make_user, owner_org):
    return make_user(role=Role.BUREAU_STAFF, organization=owner_org)


@pytest.fixture
def other_staff(make_user, other_org):
    return make_user(role=Role.BUREAU_STAFF, organization=other_org)


@pytest.fixture
def verifier(make_user, verifier_org):
    return make_user(role=Role.VERIFIER, organization=verifier_org)


@pytest.fixture
def buyer(make_user, buyer_org):
    return make_user(role=Role.BUYER, organization=buyer_org)


@pytest.fixture
def api():
    """``api(user)``: a client sending ``user``'s token; ``api()`` is anonymous."""

    def make(user=None, language="en"):
        client = APIClient(HTTP_ACCEPT_LANGUAGE=language)
        if user is not None:
            token, _created = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def journey(
    api,
    staff,
    verifier,
    admin,
    second_admin,
    buyer,
    owner_org,
    reference_data,
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
):
    """Everything the API journey makes (tests/api/journey.py)."""
    from tests.api.journey import walk

    settings.MEDIA_ROOT = tmp_path / "media"
    return walk(
        api=api,
        staff=staff,
        verifier=verifier,
        admin=admin,
        second_admin=second_admin,
        buyer=buyer,
        owner_org=owner_org,
        tmp_path=tmp_path,
        on_commit=django_capture_on_commit_callbacks,
    )
