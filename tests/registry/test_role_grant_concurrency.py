"""Role grants under real concurrency (PostgreSQL, the production-stack stage):
each client on its own connection, and a change is still asked for once and
decided once."""

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from registry import services
from registry.models import RoleGrant, User
from registry.roles import Role

pytestmark = [pytest.mark.production_stack, pytest.mark.django_db(transaction=True)]


def _in_threads(function, arguments):
    barrier = threading.Barrier(len(arguments))

    def call(argument):
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            return function(argument)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(arguments)) as pool:
        return list(pool.map(call, arguments))


@pytest.fixture
def admins(make_user, operator):
    return [
        make_user(role=Role.REGISTRY_ADMIN, organization=operator) for _ in range(8)
    ]


def test_the_same_change_asked_for_at_once_waits_once(admins, make_user):
    assert connection.vendor == "postgresql"
    buyer = make_user(role=Role.BUYER)

    def ask(admin):
        try:
            services.request_role_grant(
                actor=admin,
                kind=RoleGrant.Kind.GRANT_ROLE,
                user=buyer,
                role=Role.VERIFIER,
                reason="Joins the verification team.",
            )
        except ValidationError as error:
            assert error.code == "role_grant_duplicate"
            return "refused"
        return "asked"

    outcomes = _in_threads(ask, admins)

    assert outcomes.count("asked") == 1
    assert outcomes.count("refused") == len(admins) - 1
    assert RoleGrant.objects.filter(status=RoleGrant.Status.PENDING).count() == 1


def test_deciders_at_once_decide_once(admins, make_user):
    requester, *deciders = admins
    buyer = make_user(role=Role.BUYER)
    grant = services.request_role_grant(
        actor=requester,
        kind=RoleGrant.Kind.GRANT_ROLE,
        user=buyer,
        role=Role.VERIFIER,
        reason="Joins the verification team.",
    )

    def decide(index_and_admin):
        index, admin = index_and_admin
        try:
            if index % 2:
                services.reject_role_grant(grant=grant, approver=admin, note="No.")
            else:
                services.approve_role_grant(grant=grant, approver=admin)
        except ValidationError as error:
            assert error.code == "role_grant_decided"
            return "refused"
        return "decided"

    outcomes = _in_threads(decide, list(enumerate(deciders)))

    assert outcomes.count("decided") == 1
    grant.refresh_from_db()
    assert grant.decided_by in deciders
    has_role = User.objects.get(pk=buyer.pk).groups.filter(name=Role.VERIFIER).exists()
    assert has_role == (grant.status == RoleGrant.Status.APPROVED)
