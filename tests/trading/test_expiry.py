"""Reservations never outlive their request (issue 15, part 2): with beat down,
the next ledger step on an account (a new request from it, a review of one of
its requests) releases its expired requests first, and the review queue
releases them all; ``verify_ledger`` reports an expired request still holding
credits; a failing nightly check is logged at ERROR and raised as one alert.

Each test runs on SQLite (trading.services' Python steps) and on PostgreSQL
(trading/db_guards.py's functions); the last one races real connections on
PostgreSQL (production-stack stage)."""

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry.models import Alert
from tests.trading.conftest import new_key
from trading import services
from trading.models import LedgerCheck, LedgerEntry, TradeRequest
from trading.selectors import get_account_balance
from trading.tasks import verify_ledger_task
from trading.verification import EXPIRY_GRACE, verify_ledger

pytestmark = pytest.mark.django_db


def _transfer(seller, seller_account, buyer_account, quantity, **fields):
    return services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=quantity,
        price_per_tonne="90.00",
        idempotency_key=fields.pop("idempotency_key", new_key()),
        **fields,
    )


def _expire(request, ago=timedelta(hours=1)) -> TradeRequest:
    """Put the request's expiry in the past, as if beat had been down since."""
    TradeRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - ago)
    request.refresh_from_db()
    return request


def _status(request) -> str:
    return TradeRequest.objects.values_list("status", flat=True).get(pk=request.pk)


def _releases(request) -> list[tuple]:
    return list(
        LedgerEntry.objects.filter(trade_request=request, kind=LedgerEntry.Kind.RELEASE)
        .order_by("sequence")
        .values_list("batch_id", "first_serial", "last_serial", "actor_id")
    )


@pytest.fixture
def held(issue, seller, seller_account, buyer_account):
    """The seller holds 1,000 t; a transfer of 800 t reserved them, and then
    expired with nothing to release it (beat down)."""
    issue(quantity=1000, buffer=0)
    return _expire(_transfer(seller, seller_account, buyer_account, quantity=800))


# The next step on the account releases it -------------------------------------------


def test_beat_never_runs_and_the_next_transfer_spends_the_released_credits(
    held, seller, seller_account, buyer_account, admin
):
    assert get_account_balance(account=seller_account)["active"] == 200
    reserved = list(held.blocks.values_list("batch_id", "first_serial", "last_serial"))

    # 700 t: only possible with the expired request's 800 t back.
    transfer = _transfer(seller, seller_account, buyer_account, quantity=700)

    assert _status(held) == TradeRequest.Status.EXPIRED
    assert [entry[:3] for entry in _releases(held)] == reserved
    assert {entry[3] for entry in _releases(held)} == {None}  # by the registry
    balance = get_account_balance(account=seller_account)
    assert (balance["active"], balance["reserved"]) == (300, 700)
    services.approve_request(actor=admin, request=transfer)
    assert get_account_balance(account=buyer_account)["active"] == 700
    assert verify_ledger().ok


@pytest.mark.parametrize("kind", ["retirement", "cancellation"])
def test_retirements_and_cancellations_release_first_too(
    held, kind, seller, seller_account, admin
):
    if kind == "retirement":
        services.request_retirement(
            actor=seller,
            from_account=seller_account,
            quantity=900,
            beneficiary="毕节市某公司",
            purpose="voluntary",
            reporting_year=2025,
            idempotency_key=new_key(),
        )
    else:
        services.request_cancellation(
            actor=admin,
            from_account=seller_account,
            quantity=900,
            note="Reversal: fire in compartment 12.",
            idempotency_key=new_key(),
        )
    assert _status(held) == TradeRequest.Status.EXPIRED
    assert get_account_balance(account=seller_account)["reserved"] == 900


def test_only_the_accounts_own_expired_requests_are_released(
    held, issue, seller, seller_account, buyer, buyer_account
):
    """A step on one account leaves another account's expired requests to
    that account's next step (or the expiry task)."""
    issue(quantity=500, buffer=0, holder=buyer_account)
    theirs = _expire(_transfer(buyer, buyer_account, seller_account, quantity=500))

    _transfer(seller, seller_account, buyer_account, quantity=100)
    assert _status(held) == TradeRequest.Status.EXPIRED
    assert _status(theirs) == TradeRequest.Status.PENDING
    assert get_account_balance(account=buyer_account)["reserved"] == 500

    _transfer(buyer, buyer_account, seller_account, quantity=450)
    assert _status(theirs) == TradeRequest.Status.EXPIRED


def test_a_request_expires_at_its_expiry_time_not_before(held):
    """Expired means the expiry is now or past (as the settle steps agree)."""
    earlier = held.expires_at - timedelta(microseconds=1)
    assert services.release_expired(now=earlier) == []
    assert _status(held) == TradeRequest.Status.PENDING
    assert services.release_expired(now=held.expires_at) == [held]
    assert _status(held) == TradeRequest.Status.EXPIRED


def test_an_unexpired_request_keeps_its_reservation(
    issue, seller, seller_account, buyer_account
):
    issue(quantity=1000, buffer=0)
    waiting = _transfer(seller, seller_account, buyer_account, quantity=800)
    with pytest.raises(ValidationError) as refused:
        _transfer(seller, seller_account, buyer_account, quantity=700)
    assert refused.value.code == "insufficient_credits"
    assert _status(waiting) == TradeRequest.Status.PENDING
    assert _releases(waiting) == []


def test_release_returns_the_requests_it_expired_with_their_accounts(
    held, seller_account, django_assert_num_queries
):
    (released,) = services.release_expired(account_id=seller_account.pk)
    assert (released.pk, released.status) == (held.pk, TradeRequest.Status.EXPIRED)
    with django_assert_num_queries(0):  # the account locked on the way
        assert released.from_account.number == seller_account.number
    assert services.release_expired(account_id=seller_account.pk) == []


def test_a_request_reviewed_meanwhile_is_skipped_and_the_rest_released(
    issue, seller, seller_account, buyer_account
):
    """Between listing the expired requests and locking one, a concurrent
    step may have ended it: it is left as that step left it, and the next one
    is still released."""
    issue(quantity=1000, buffer=0)
    first = _transfer(seller, seller_account, buyer_account, quantity=100)
    second = _expire(_transfer(seller, seller_account, buyer_account, quantity=200))
    first = _expire(first)
    lock_accounts = services._lock_accounts
    raced = []

    def lock_while_another_step_ends_the_first(*account_ids):
        if not raced:  # what a concurrent reviewer commits first
            raced.append(first.pk)
            TradeRequest.objects.filter(pk=first.pk).update(
                status=TradeRequest.Status.REJECTED
            )
        return lock_accounts(*account_ids)

    with mock.patch.object(
        services, "_lock_accounts", side_effect=lock_while_another_step_ends_the_first
    ):
        released = services.release_expired(account_id=seller_account.pk)

    assert released == [second]
    assert _status(first) == TradeRequest.Status.REJECTED
    assert _releases(first) == []  # not released by a step that did not end it
    assert len(_releases(second)) == 1
    assert get_account_balance(account=seller_account)["active"] == 900


# Refusals change nothing --------------------------------------------------------------


def test_a_refused_request_releases_nothing(
    held, seller, buyer, seller_account, buyer_account
):
    """Bad input and a caller who may not spend the account change nothing,
    the expired request included."""
    with pytest.raises(ValidationError):
        _transfer(seller, seller_account, buyer_account, 100, idempotency_key=" ")
    with pytest.raises(PermissionDenied):
        _transfer(buyer, seller_account, buyer_account, quantity=100)
    assert _status(held) == TradeRequest.Status.PENDING
    assert _releases(held) == []


# Reviews ---------------------------------------------------------------------------


def test_approving_an_expired_request_is_refused_and_releases_it(
    held, seller_account, buyer_account, admin
):
    with pytest.raises(ValidationError) as refused:
        services.approve_request(actor=admin, request=held)

    assert refused.value.code == "expired"
    assert "expired before it was approved" in refused.value.message
    assert _status(held) == TradeRequest.Status.EXPIRED
    assert TradeRequest.objects.get(pk=held.pk).reviewed_by_id is None
    assert get_account_balance(account=seller_account)["active"] == 1000
    assert get_account_balance(account=buyer_account)["active"] == 0
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TRANSFER).exists()
    assert verify_ledger().ok


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_reviewing_a_request_releases_its_accounts_expired_ones(
    action, issue, seller, seller_account, buyer_account, admin
):
    """Both were made before one of them expired: reviewing the other releases
    it, and the review itself still acts."""
    issue(quantity=1000, buffer=0)
    expiring = _transfer(seller, seller_account, buyer_account, quantity=800)
    reviewed = _transfer(seller, seller_account, buyer_account, quantity=100)
    _expire(expiring)

    if action == "approve":
        services.approve_request(actor=admin, request=reviewed)
        outcome, seller_active, buyer_active = TradeRequest.Status.SETTLED, 900, 100
    else:
        services.reject_request(actor=admin, request=reviewed, reason="Wrong price")
        outcome, seller_active, buyer_active = TradeRequest.Status.REJECTED, 1000, 0

    assert _status(expiring) == TradeRequest.Status.EXPIRED
    assert len(_releases(expiring)) == 1
    assert _status(reviewed) == outcome
    assert get_account_balance(account=seller_account)["active"] == seller_active
    assert get_account_balance(account=buyer_account)["active"] == buyer_active
    assert verify_ledger().ok


def test_rejecting_an_expired_request_is_refused_after_its_release(held, admin):
    with pytest.raises(ValidationError) as refused:
        services.reject_request(actor=admin, request=held, reason="Too late")
    assert refused.value.code == "not_pending"
    assert _status(held) == TradeRequest.Status.EXPIRED
    assert len(_releases(held)) == 1


def test_a_review_refused_for_its_input_or_reviewer_releases_nothing(
    held, seller, admin
):
    with pytest.raises(ValidationError):
        services.reject_request(actor=admin, request=held, reason="  ")
    with pytest.raises(PermissionDenied):
        services.approve_request(actor=seller, request=held)
    assert _status(held) == TradeRequest.Status.PENDING


# The review queue ------------------------------------------------------------------


def test_the_review_queue_releases_expired_requests_and_shows_them_expired(
    client, held, issue, buyer, buyer_account, seller_account, admin
):
    issue(quantity=500, buffer=0, holder=buyer_account)
    theirs = _transfer(buyer, buyer_account, seller_account, quantity=300)
    waiting = _transfer(buyer, buyer_account, seller_account, quantity=50)
    theirs = _expire(theirs)
    client.force_login(admin)

    page = client.get(
        reverse("trading:review-queue"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    for request in (held, theirs):  # every account's
        assert _status(request) == TradeRequest.Status.EXPIRED
        approve = reverse("trading:review-action", args=[request.pk, "approve"])
        assert approve not in page  # not offered for review
    assert "Expired before review" in page
    shown = f"#{held.pk} Transfer: 800 t CO2e, <code>{seller_account.number}</code>"
    assert shown in page
    assert f"#{theirs.pk} Transfer: 300 t CO2e" in page
    assert reverse("trading:review-action", args=[waiting.pk, "approve"]) in page
    assert get_account_balance(account=seller_account)["active"] == 1000
    assert get_account_balance(account=buyer_account)["reserved"] == 50

    again = client.get(reverse("trading:review-queue"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Expired before review" not in again.content.decode()  # listed once


def test_the_review_queue_says_expired_in_chinese(client, held, admin):
    client.force_login(admin)
    page = client.get(reverse("trading:review-queue"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    expired = f"#{held.pk} "
    assert expired in page.content.decode()
    assert '<span class="tag">已过期</span>' in page.content.decode()


def test_the_review_queue_is_refused_to_others_and_then_releases_nothing(
    client, held, seller
):
    client.force_login(seller)
    assert client.get(reverse("trading:review-queue")).status_code == 403
    assert _status(held) == TradeRequest.Status.PENDING


def test_the_review_queue_query_count_does_not_grow(
    client, issue, seller, seller_account, buyer_account, admin
):
    """Waiting requests and their accounts: 1 and then 20 cost the same."""
    issue(quantity=1000, buffer=0)
    client.force_login(admin)
    counts = []
    for waiting in (1, 19):
        for _n in range(waiting):
            _transfer(seller, seller_account, buyer_account, quantity=1)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("trading:review-queue")).status_code == 200
        counts.append(len(queries))
    assert TradeRequest.objects.count() == 20
    assert counts[0] == counts[1], counts


# verify_ledger ---------------------------------------------------------------------


def test_verify_ledger_reports_an_expired_request_still_holding_credits(
    issue, seller, seller_account, buyer_account
):
    issue(quantity=600, buffer=0, vintage=2024)
    issue(quantity=600, buffer=0)  # the request spans both batches' blocks
    request = _expire(_transfer(seller, seller_account, buyer_account, quantity=1000))
    assert request.blocks.count() == 2

    report = verify_ledger()

    assert report.violations == [
        {
            "check": "expired_reservation",
            "request": request.pk,
            "kind": "transfer",
            "quantity": 1000,
            "expired_since": request.expires_at.isoformat(),
        }
    ]
    assert LedgerCheck.objects.get(pk=report.check_id).violations == report.violations
    services.release_expired()
    assert verify_ledger().ok


def test_verify_ledger_gives_the_expiry_task_its_grace(held):
    """A request only just past its expiry may not have met the expiry task
    yet: a violation once a quarter of an hour has passed, not a moment before."""
    assert timedelta(minutes=15) == EXPIRY_GRACE
    due = held.expires_at + timedelta(minutes=15)
    for now, ok in ((due - timedelta(microseconds=1), True), (due, False)):
        with mock.patch("django.utils.timezone.now", return_value=now):
            assert verify_ledger(record=False).ok is ok, now


def test_an_expired_status_with_reserved_credits_is_one_finding_not_two(held):
    """A request marked expired but still holding credits breaks invariant 4
    ("reservation"); it is not pending, so it is not an expired reservation too."""
    TradeRequest.objects.filter(pk=held.pk).update(status=TradeRequest.Status.EXPIRED)
    checks = [v["check"] for v in verify_ledger(record=False).violations]
    assert checks == ["reservation"]


def test_an_unrecorded_check_has_no_id(held):
    assert verify_ledger(record=False).check_id is None
    assert not LedgerCheck.objects.exists()


# The nightly task ------------------------------------------------------------------


def test_a_failing_nightly_check_logs_an_error_and_raises_one_alert(
    held, admin, caplog, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.INFO, logger="trading.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert verify_ledger_task() is False
    first = LedgerCheck.objects.get()
    errors = [
        record
        for record in caplog.records
        if record.name == "trading.tasks" and record.levelno == logging.ERROR
    ]
    assert [record.getMessage() for record in errors] == [
        f"Ledger check #{first.pk} failed with 1 violation(s); see it in the "
        "admin (ledger checks) or run manage.py verify_ledger."
    ]
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.is_open) == (
        Alert.Kind.LEDGER_CHECK_FAILED,
        "ledger",
        True,
    )
    assert alert.params == {"violations": 1, "check": first.pk}
    assert [message.to for message in mail.outbox] == [[admin.email]]

    # The second failing night: a new check, the same open alert, no e-mail.
    with django_capture_on_commit_callbacks(execute=True):
        assert verify_ledger_task() is False
    assert LedgerCheck.objects.count() == 2
    assert Alert.objects.get().pk == alert.pk
    assert len(mail.outbox) == 1


def test_a_passing_nightly_check_raises_nothing(issue, admin, caplog):
    issue(quantity=100, buffer=0)
    with caplog.at_level(logging.INFO, logger="trading.tasks"):
        assert verify_ledger_task() is True
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not Alert.objects.exists()
    assert LedgerCheck.objects.get().ok


# PostgreSQL, real connections at once ---------------------------------------------


@pytest.mark.production_stack
@pytest.mark.django_db(transaction=True)
def test_concurrent_steps_on_an_account_release_its_expired_request_once(
    reference_data, issue, seller, seller_account, buyer_account, admin
):
    """Twelve clients at once: ten new transfers of 100 t, which fit only with
    the expired request's 800 t back, and two reviewers refusing it. Each
    released it or found it released; its serials came back exactly once, and
    the ledger verifies."""
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    issue(quantity=1000, buffer=0)
    held = _expire(_transfer(seller, seller_account, buyer_account, quantity=800))
    barrier = threading.Barrier(12)

    def step(n):
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            if n < 10:
                _transfer(seller, seller_account, buyer_account, quantity=100)
                return "reserved"
            try:
                services.approve_request(actor=admin, request=held)
            except ValidationError as error:
                return error.code
            return "settled"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(step, range(12)))

    assert sorted(outcomes) == ["expired", "expired"] + ["reserved"] * 10
    assert _status(held) == TradeRequest.Status.EXPIRED
    assert len(_releases(held)) == 1  # its one block, released once
    balance = get_account_balance(account=seller_account)
    assert (balance["active"], balance["reserved"]) == (0, 1000)
    report = verify_ledger()
    assert report.ok, report.violations
