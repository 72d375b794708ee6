"""Each issuance rule decided once: who may issue (``can_issue``), where the
credits land (``registry.selectors.holding_account``), a period issued once
(``trading.services.issue_batch``), a changed file caught at issuance."""

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from estimation.models import Verification
from estimation.selectors import can_issue
from estimation.services.issuance import issue_verification
from estimation.services.verification import (
    approve_verification,
    submit_for_verification,
)
from registry.models import Account
from registry.selectors import holding_account
from trading import services as trading_services
from trading.models import CreditBlock, LedgerEntry

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def submitted(staff, verified_run):
    return submit_for_verification(actor=staff, run=verified_run)


@pytest.fixture
def approved(submitted, verifier):
    return approve_verification(actor=verifier, verification=submitted)


def nothing_issued():
    return not CreditBlock.objects.exists() and not LedgerEntry.objects.exists()


def test_may_issue_is_registry_admins_on_approved_verifications(
    submitted, verifier, staff, registry_admin
):
    assert can_issue(registry_admin)
    assert not can_issue(staff) and not can_issue(verifier)
    assert not can_issue(registry_admin, submitted)
    approve_verification(actor=verifier, verification=submitted)
    submitted.refresh_from_db()
    assert can_issue(registry_admin, submitted)
    assert not can_issue(staff, submitted)


def test_who_may_issue_is_checked_before_the_verifications_state(submitted, staff):
    # A non-admin learns nothing about the verification: refused as such,
    # not told that it is not approved yet.
    with pytest.raises(PermissionDenied):
        issue_verification(actor=staff, verification=submitted)
    assert nothing_issued()


def test_the_issue_button_follows_can_issue(
    client, approved, registry_admin, staff, verifier
):
    url = reverse("estimation:verification-detail", args=[approved.pk])
    issue_url = reverse("estimation:verification-issue", args=[approved.pk])
    for user, shown in ((registry_admin, True), (staff, False), (verifier, False)):
        client.force_login(user)
        body = client.get(url, **EN).content.decode()
        assert (issue_url in body) is shown, user
    client.force_login(registry_admin)
    issue_verification(actor=registry_admin, verification=approved)
    assert issue_url not in client.get(url, **EN).content.decode()


def test_the_holding_account_is_the_organizations_holding_account(
    owner, registered_project
):
    from tests.registry.factories import OrganizationFactory

    holding = holding_account(owner)
    assert holding.organization == owner and holding.kind == Account.Kind.HOLDING
    assert holding_account(OrganizationFactory(name_en="No accounts yet")) is None


def test_credits_land_in_the_owners_holding_account(approved, registry_admin, owner):
    batch = issue_verification(actor=registry_admin, verification=approved).batch
    held = CreditBlock.objects.get(batch=batch, account__organization=owner)
    assert held.account == holding_account(owner)
    assert held.quantity == batch.quantity - batch.buffer_quantity


def test_an_owner_without_a_holding_account_gets_nothing_issued(
    approved, registry_admin, owner
):
    Account.objects.filter(organization=owner, kind=Account.Kind.HOLDING).delete()
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "no_holding_account"
    assert nothing_issued()


def test_a_period_credited_by_other_means_is_refused_by_the_ledger_at_issuance(
    staff, verifier, registry_admin, registered_project, verified_run, owner
):
    # Credits for 2023 issued outside a verification (e.g. before this
    # registry kept runs): submission and approval go ahead; issuance, where
    # the rule lives, refuses with its own code and message.
    trading_services.issue_batch(
        actor=registry_admin,
        project=registered_project,
        vintage=2023,
        monitoring_start=date(2023, 1, 1),
        monitoring_end=date(2023, 12, 31),
        quantity=5,
        buffer_quantity=0,
        holder_account=holding_account(owner),
    )
    verification = submit_for_verification(
        actor=staff,
        run=verified_run,
        monitoring_start=date(2023, 6, 1),
        monitoring_end=date(2024, 12, 31),
    )
    approve_verification(actor=verifier, verification=verification)
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=verification)
    assert [e.code for e in raised.value.error_dict["monitoring_start"]] == [
        "period_issued"
    ]
    verification.refresh_from_db()
    assert verification.status == Verification.Status.APPROVED
    assert LedgerEntry.objects.count() == 1  # the earlier batch's only


def test_a_missing_land_cover_file_issues_nothing(approved, registry_admin):
    dataset = approved.run.dataset
    dataset.file.storage.delete(dataset.file.name)
    with pytest.raises(ValidationError) as raised:
        issue_verification(actor=registry_admin, verification=approved)
    assert raised.value.code == "fingerprint"
    assert nothing_issued()


def test_issuance_reads_each_land_cover_file_once(
    approved, registry_admin, monkeypatch
):
    from estimation.services import issuance

    reads = []
    real = issuance.stored_file_sha256
    monkeypatch.setattr(
        issuance,
        "stored_file_sha256",
        lambda dataset: reads.append(dataset.pk) or real(dataset),
    )
    issue_verification(actor=registry_admin, verification=approved)
    assert reads == [approved.run.dataset_id]
