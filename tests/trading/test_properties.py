"""Random sequences of ledger operations, every invariant checked after each
step (hypothesis stateful testing), against a simple model of the balances."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from registry import services as registry_services
from registry.models import Organization
from registry.roles import Role
from tests.registry.factories import MembershipFactory, UserFactory
from tests.registry.projects import make_project
from trading import services
from trading.models import TradeRequest
from trading.selectors import get_account_balance
from trading.verification import verify_ledger

pytestmark = pytest.mark.django_db


def _user(role, organization):
    user = UserFactory()
    registry_services.grant_role(user=user, role=role)
    MembershipFactory(user=user, organization=organization)
    return user


class LedgerMachine(RuleBasedStateMachine):
    """Each example runs in a savepoint rolled back afterwards: the journal is
    append-only, so a clean ledger per example is a rollback, not a delete."""

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    @initialize()
    def set_up(self):
        self.key = 0
        operator = Organization.objects.filter(kind="registry_operator").first()
        if operator is None:
            operator = registry_services.create_organization(
                name_zh="中心",
                name_en="Operator",
                kind="registry_operator",
                uscc="12520500MB18360416",
            )
        self.admins = [_user(Role.REGISTRY_ADMIN, operator) for _ in range(2)]
        self.holders = []
        for n in range(2):
            org = registry_services.create_organization(
                name_zh=f"持有人{n}{self._next()}",
                name_en=f"Holder {n}",
                kind="project_owner",
                uscc=_uscc(self._next()),
            )
            self.holders.append(
                (org.accounts.get(kind="holding"), _user(Role.BUREAU_STAFF, org))
            )
        self.project = make_project(
            actor=self.holders[0][1], owner=self.holders[0][0].organization
        )
        self.issued = 0
        self.batches = 0
        self.pending: list[int] = []

    def _next(self) -> int:
        self.key += 1
        return self.key

    @rule(
        quantity=st.integers(1, 5000),
        buffer_share=st.integers(0, 30),
        holder=st.integers(0, 1),
    )
    def issue(self, quantity, buffer_share, holder):
        buffer = min(quantity - 1, quantity * buffer_share // 100)
        # A monitoring period is issued once: each batch gets a day of its own.
        day = date(2025, 1, 1) + timedelta(days=self.batches)
        self.batches += 1
        services.issue_batch(
            actor=self.admins[0],
            project=self.project,
            vintage=2025,
            monitoring_start=day,
            monitoring_end=day,
            quantity=quantity,
            buffer_quantity=buffer,
            holder_account=self.holders[holder][0],
        )
        self.issued += quantity

    @rule(
        quantity=st.integers(1, 3000),
        seller=st.integers(0, 1),
        kind=st.sampled_from(["transfer", "retirement", "cancellation"]),
    )
    def request(self, quantity, seller, kind):
        account, user = self.holders[seller]
        before = get_account_balance(account=account)
        try:
            if kind == "transfer":
                request = services.request_transfer(
                    actor=user,
                    from_account=account,
                    to_account=self.holders[1 - seller][0],
                    quantity=quantity,
                    price_per_tonne="50",
                    idempotency_key=f"k{self._next()}",
                )
            elif kind == "retirement":
                request = services.request_retirement(
                    actor=user,
                    from_account=account,
                    quantity=quantity,
                    beneficiary="某公司",
                    purpose="voluntary",
                    reporting_year=2026,
                    idempotency_key=f"k{self._next()}",
                )
            else:
                request = services.request_cancellation(
                    actor=self.admins[0],
                    from_account=account,
                    quantity=quantity,
                    note="reversal",
                    idempotency_key=f"k{self._next()}",
                )
        except ValidationError:
            assert before["active"] < quantity
            assert get_account_balance(account=account) == before
            return
        assert before["active"] >= quantity
        self.pending.append(request.pk)

    @rule(index=st.integers(0, 100), approve=st.booleans())
    def review(self, index, approve):
        if not self.pending:
            return
        request = TradeRequest.objects.get(
            pk=self.pending.pop(index % len(self.pending))
        )
        reviewer = (
            self.admins[1]
            if request.initiator_id == self.admins[0].pk
            else self.admins[0]
        )
        if approve:
            services.approve_request(actor=reviewer, request=request)
        else:
            services.reject_request(actor=reviewer, request=request, reason="no")
        with pytest.raises(ValidationError):  # a request settles at most once
            services.approve_request(actor=reviewer, request=request)

    @rule()
    def expire_everything_pending(self):
        later = timezone.now() + timedelta(days=30)
        assert services.expire_stale_requests(now=later) == len(self.pending)
        self.pending = []

    @invariant()
    def every_invariant_holds(self):
        if not hasattr(self, "project"):
            return
        report = verify_ledger(record=False)
        assert report.ok, report.violations
        assert report.issued == self.issued
        assert sum(report.by_state.values()) == self.issued
        reserved = sum(TradeRequest.objects.get(pk=pk).quantity for pk in self.pending)
        assert report.by_state["reserved"] == reserved


def _uscc(n: int) -> str:
    from registry import uscc

    body = f"91520500MA{n:07d}"
    return body + uscc.check_character(body)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
