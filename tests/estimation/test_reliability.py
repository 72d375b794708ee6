"""Runs always end, and heavy work stays out of requests (issue 15, parts 1 and 4):
late acknowledgement and time limits, any exception ends a run as failed, the
sweep of runs whose worker went silent, the outbox that survives a broker
outage, retries, the land-cover file check and the stored run picture."""

import builtins
import logging
from datetime import timedelta
from pathlib import Path
from unittest import mock

import kombu.exceptions
import pytest
import redis.exceptions
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.errors import StateConflict
from config.celery import app as celery_app
from estimation import tasks
from estimation.errors import RUN_FAILURE_MESSAGES, run_failure_message
from estimation.models import (
    ClassMapping,
    EstimationRun,
    LandCoverDataset,
    Verification,
)
from estimation.services import datasets as dataset_services
from estimation.services import runs as run_services
from estimation.services.datasets import stored_file_sha256
from estimation.services.verification import submit_for_verification
from registry.roles import Role

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
API = "/api/v1"


@pytest.fixture
def queued_run(run_for, monkeypatch):
    """A run written but not sent: the worker has not taken it yet."""
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = run_for()
    monkeypatch.undo()
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.QUEUED
    return run


@pytest.fixture
def alerts(monkeypatch):
    """The alerts raised through registry.services.raise_alert (shared interface)."""
    from registry import services as registry_services

    raised = []
    monkeypatch.setattr(
        registry_services,
        "raise_alert",
        lambda **arguments: raised.append(arguments),
        raising=False,
    )
    return raised


def _failed_run(queued_run, code="io_error"):
    with mock.patch.object(run_services, "_compute", side_effect=OSError("disk")):
        run_services.execute_run(run_id=queued_run.pk)
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.FAILED
    return queued_run


def _client(user):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    token, _created = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# Late acknowledgement, time limits, visibility timeout ---------------------------


def test_the_run_task_acknowledges_late_and_has_time_limits_from_settings():
    task = tasks.execute_run_task
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.soft_time_limit == django_settings.ESTIMATION_RUN_SOFT_TIME_LIMIT
    assert task.time_limit == django_settings.ESTIMATION_RUN_TIME_LIMIT


def test_the_redis_visibility_timeout_is_above_the_hard_time_limit():
    soft = django_settings.ESTIMATION_RUN_SOFT_TIME_LIMIT
    hard = django_settings.ESTIMATION_RUN_TIME_LIMIT
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert 0 < soft < hard < visibility
    assert celery_app.conf.broker_transport_options["visibility_timeout"] == visibility


def test_beat_runs_the_sweep_the_resend_and_the_weekly_file_check():
    scheduled = {
        entry["task"]: entry["schedule"]
        for entry in celery_app.conf.beat_schedule.values()
    }
    for task in (
        tasks.sweep_stale_runs_task,
        tasks.redispatch_queued_runs_task,
        tasks.recheck_dataset_files_task,
    ):
        assert task.name in scheduled
    assert scheduled[tasks.sweep_stale_runs_task.name] <= 300
    assert scheduled[tasks.redispatch_queued_runs_task.name] <= 300


# Any exception ends the run ---------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OSError("Input/output error: /media/landcover/x.tif"), "io_error"),
        (DatabaseError("server closed the connection unexpectedly"), "database_error"),
        (MemoryError(), "out_of_memory"),
        (SoftTimeLimitExceeded(), "time_limit"),
        (RuntimeError("secret internals"), "internal_error"),
        (KeyError("boom"), "internal_error"),
    ],
)
def test_any_exception_ends_the_run_as_failed_with_a_reason_and_an_error_log(
    queued_run, error, code, caplog
):
    failing = mock.patch.object(run_services, "_compute", side_effect=error)
    with failing, caplog.at_level(logging.ERROR, logger="estimation.services.runs"):
        status = tasks.execute_run_task.apply(args=[queued_run.pk]).get()
    assert status == "failed"
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.FAILED
    assert queued_run.error_code == code
    assert queued_run.error_message == str(RUN_FAILURE_MESSAGES[code])
    assert queued_run.failure_reason == str(RUN_FAILURE_MESSAGES[code])
    assert queued_run.finished_at is not None
    assert queued_run.attempts == 1
    for raw in ("Input/output", "server closed", "secret internals", "Traceback"):
        assert raw not in queued_run.error_message
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None
    assert str(queued_run.pk) in logged[0].getMessage()


def test_the_run_page_and_status_show_the_reason_never_the_exception(
    client, staff, queued_run
):
    with mock.patch.object(
        run_services, "_compute", side_effect=RuntimeError("secret internals")
    ):
        run_services.execute_run(run_id=queued_run.pk)
    client.force_login(staff)
    body = client.get(
        reverse("estimation:run-detail", args=[queued_run.pk]), **EN
    ).content.decode()
    assert str(RUN_FAILURE_MESSAGES["internal_error"]) in body
    assert "secret internals" not in body
    status = client.get(reverse("estimation:run-status", args=[queued_run.pk])).json()
    assert status["error"] == str(RUN_FAILURE_MESSAGES["internal_error"])


def test_an_unknown_code_falls_back_to_the_generic_reason():
    assert run_failure_message("nonsense") == str(
        RUN_FAILURE_MESSAGES["internal_error"]
    )


def test_a_run_already_taken_by_a_worker_is_not_computed_again(queued_run):
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )
    with mock.patch.object(run_services, "_compute", side_effect=AssertionError):
        run = run_services.execute_run(run_id=queued_run.pk)
    assert (run.status, run.attempts) == (EstimationRun.Status.RUNNING, 1)


def test_starting_a_run_records_the_attempt_and_a_heartbeat(queued_run):
    seen = {}

    def compute(run, progress):
        seen.update(
            EstimationRun.objects.filter(pk=run.pk).values(
                "status", "attempts", "heartbeat_at"
            )[0]
        )
        raise OSError("stop here")

    with mock.patch.object(run_services, "_compute", side_effect=compute):
        run_services.execute_run(run_id=queued_run.pk)
    assert seen["status"] == EstimationRun.Status.RUNNING
    assert seen["attempts"] == 1
    assert seen["heartbeat_at"] is not None


def test_progress_beats_the_heart_of_its_own_attempt_only(queued_run, settings):
    settings.ESTIMATION_RUN_HEARTBEAT_SECONDS = 0
    long_ago = timezone.now() - timedelta(hours=1)
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=2, heartbeat_at=long_ago
    )
    run_services._Progress(queued_run.pk, attempt=1)(0.5)  # a superseded attempt
    queued_run.refresh_from_db()
    assert (queued_run.heartbeat_at, queued_run.progress) == (long_ago, 0)
    run_services._Progress(queued_run.pk, attempt=2)(0.01)  # no new 5 %, time is up
    queued_run.refresh_from_db()
    assert queued_run.heartbeat_at > long_ago


def test_progress_alone_writes_every_five_percent(queued_run, settings):
    settings.ESTIMATION_RUN_HEARTBEAT_SECONDS = 3600
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=1
    )
    progress = run_services._Progress(queued_run.pk, attempt=1)
    progress(0.03)
    queued_run.refresh_from_db()
    assert queued_run.progress == 0
    progress(0.42)
    queued_run.refresh_from_db()
    assert queued_run.progress == 42


def test_progress_reports_cost_queries_only_when_they_write(queued_run, settings):
    """An engine reports after every raster window: 10 reports or 1,000 of
    them within the same 5 % cost the same queries (none), and the write at the
    next 5 % costs one."""
    settings.ESTIMATION_RUN_HEARTBEAT_SECONDS = 3600
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=1
    )
    counts = []
    for reports in (10, 1000):
        progress = run_services._Progress(queued_run.pk, attempt=1)
        with CaptureQueriesContext(connection) as queries:
            for n in range(reports):
                progress(0.04 * n / reports)
        counts.append(len(queries))
    assert counts == [0, 0]
    with CaptureQueriesContext(connection) as queries:
        progress(0.5)
    assert len(queries) == 1


def test_a_cancelled_run_is_stopped_at_its_next_progress_write(queued_run, staff):
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=1
    )
    progress = run_services._Progress(queued_run.pk, attempt=1)
    progress(0.10)
    run_services.cancel_run(actor=staff, run=queued_run)
    progress(0.12)  # under the next 5 %: nothing asked yet
    with pytest.raises(run_services.RunCancelled):
        progress(0.20)
    queued_run.refresh_from_db()
    assert queued_run.progress == 10  # the cancelled run's row is left alone


def test_an_attempt_stops_at_its_next_write_once_the_run_has_failed(queued_run):
    """A part of a run in parts stops once a sibling part failed the run (an
    attempt the sweep handed on goes on: its results are discarded)."""
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=1
    )
    progress = run_services._Progress(queued_run.pk, attempt=1)
    progress(0.10)
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.FAILED
    )
    with pytest.raises(run_services.RunEnded):
        progress(0.20)
    EstimationRun.objects.filter(pk=queued_run.pk).update(
        status=EstimationRun.Status.RUNNING, attempts=2
    )
    progress(0.30)  # handed on: no write, no stop
    queued_run.refresh_from_db()
    assert queued_run.progress == 10  # the rows of others are left alone


# The sweep ----------------------------------------------------------------------------


def _make_stale(run, *, attempts, minutes=None):
    minutes = minutes or django_settings.ESTIMATION_RUN_STALE_AFTER + 1
    EstimationRun.objects.filter(pk=run.pk).update(
        status=EstimationRun.Status.RUNNING,
        attempts=attempts,
        progress=40,
        started_at=timezone.now() - timedelta(minutes=minutes),
        heartbeat_at=timezone.now() - timedelta(minutes=minutes),
    )


def test_a_stale_run_is_requeued_once_and_then_completes(
    queued_run, alerts, django_capture_on_commit_callbacks
):
    _make_stale(queued_run, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        swept = tasks.sweep_stale_runs_task.apply().get()
    assert swept == {"requeued": [queued_run.pk], "failed": []}
    queued_run.refresh_from_db()
    # re-sent on commit and computed (eagerly) as the second attempt
    assert queued_run.status == EstimationRun.Status.SUCCEEDED
    assert queued_run.attempts == 2
    assert queued_run.results.exists()
    assert alerts == []


def test_a_requeued_run_is_queued_with_a_new_send_time(queued_run, alerts):
    _make_stale(queued_run, attempts=1)
    before = timezone.now()
    run_services.sweep_stale_runs()
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.QUEUED
    assert queued_run.queued_at >= before
    assert queued_run.progress == 0


def test_a_run_stale_again_is_failed_with_an_alert_and_an_error_log(
    queued_run, alerts, caplog
):
    _make_stale(queued_run, attempts=run_services.MAX_ATTEMPTS)
    with caplog.at_level(logging.ERROR, logger="estimation.services.runs"):
        swept = run_services.sweep_stale_runs()
    assert swept == {"requeued": [], "failed": [queued_run.pk]}
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.FAILED
    assert queued_run.error_code == "worker_lost"
    assert queued_run.failure_reason == str(RUN_FAILURE_MESSAGES["worker_lost"])
    assert queued_run.finished_at is not None
    assert [r for r in caplog.records if r.levelno == logging.ERROR]
    from registry.models import Alert

    assert alerts == [
        {
            "kind": Alert.Kind.RUN_FAILED_BY_SWEEP,
            "key": f"run:{queued_run.pk}",
            "params": {"run": queued_run.pk, "attempts": 2, "reason": "worker_lost"},
        }
    ]


def test_runs_with_a_recent_heartbeat_or_not_running_are_left_alone(
    queued_run, run_for, alerts
):
    _make_stale(queued_run, attempts=1, minutes=1)  # within the limit
    finished = run_for()
    EstimationRun.objects.filter(pk=finished.pk).update(
        heartbeat_at=timezone.now() - timedelta(days=1)
    )
    assert run_services.sweep_stale_runs() == {"requeued": [], "failed": []}
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.RUNNING
    finished.refresh_from_db()
    assert finished.status == EstimationRun.Status.SUCCEEDED


def test_a_run_in_parts_waits_longer_before_it_is_swept(queued_run, settings):
    """Its parts may wait behind other work, and nothing beats while they do."""
    settings.ESTIMATION_RUN_STALE_AFTER = 10
    settings.ESTIMATION_PARTS_STALE_AFTER = 71
    _make_stale(queued_run, attempts=1, minutes=30)
    EstimationRun.objects.filter(pk=queued_run.pk).update(parts_total=7, parts_done=2)
    assert run_services.sweep_stale_runs() == {"requeued": [], "failed": []}
    EstimationRun.objects.filter(pk=queued_run.pk).update(parts_total=0, parts_done=0)
    assert run_services.sweep_stale_runs() == {
        "requeued": [queued_run.pk],
        "failed": [],
    }
    _make_stale(queued_run, attempts=1, minutes=72)
    EstimationRun.objects.filter(pk=queued_run.pk).update(parts_total=7)
    assert (
        run_services._sweep_one(
            queued_run.pk, cutoffs=run_services._stale_cutoffs(timezone.now()), now=None
        )
        == "requeued"
    )


def test_a_run_that_beat_again_after_it_was_listed_is_not_swept(queued_run):
    _make_stale(queued_run, attempts=1)
    cutoffs = run_services._stale_cutoffs(timezone.now())
    EstimationRun.objects.filter(pk=queued_run.pk).update(heartbeat_at=timezone.now())
    assert run_services._sweep_one(queued_run.pk, cutoffs=cutoffs, now=None) is None


def test_a_late_original_attempt_stores_nothing_once_the_run_was_handed_on(
    queued_run, alerts, caplog
):
    """Attempt 1 stalls; the sweep re-queues the run and attempt 2 takes it;
    then attempt 1 finishes while attempt 2 still computes: its results are
    discarded, and attempt 2 alone computes and stores the run."""
    real_compute = run_services._compute

    def stalled(run, progress):
        _make_stale(run, attempts=1)
        run_services.sweep_stale_runs()
        assert run_services._claim(run.pk).attempts == 2  # the second attempt
        return real_compute(run, progress)

    late = mock.patch.object(run_services, "_compute", side_effect=stalled)
    with late, caplog.at_level(logging.WARNING, logger="estimation.services.runs"):
        run = run_services.execute_run(run_id=queued_run.pk)
    assert (run.status, run.attempts) == (EstimationRun.Status.RUNNING, 2)
    assert not run.results.exists()
    assert "discarded" in caplog.text
    second = run_services._Progress(run.pk, attempt=2)
    outcome = real_compute(run, second)
    assert run_services._store_results(run, 2, *outcome) is True
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert run.results.exists()


def test_a_late_original_attempt_that_fails_does_not_fail_the_new_attempt(
    queued_run, alerts
):
    def stalled_then_broken(run, progress):
        _make_stale(run, attempts=1)
        run_services.sweep_stale_runs()
        run_services._claim(run.pk)
        raise OSError("the old worker's disk went away")

    with mock.patch.object(run_services, "_compute", side_effect=stalled_then_broken):
        run = run_services.execute_run(run_id=queued_run.pk)
    assert (run.status, run.attempts, run.error_code) == ("running", 2, "")


# The outbox: a broker outage delays a run, never loses it --------------------------


@pytest.mark.parametrize(
    "broker_error",
    [
        kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6390"),
        redis.exceptions.ConnectionError("Connection refused"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_a_run_queued_while_the_broker_is_down_is_kept_and_sent_later(
    client,
    staff,
    project,
    dataset,
    default_methodology,
    broker_error,
    caplog,
    django_capture_on_commit_callbacks,
):
    client.force_login(staff)
    form = {
        "project": project.pk,
        "dataset": dataset.pk,
        "methodology": default_methodology.pk,
        "period_start": "2021-01-01",
        "period_end": "2021-12-31",
    }
    down = mock.patch.object(tasks.execute_run_task, "delay", side_effect=broker_error)
    with (
        down,
        caplog.at_level(logging.ERROR, logger="estimation.services.runs"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(reverse("estimation:run-create"), form, **EN)
    run = EstimationRun.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("estimation:run-detail", args=[run.pk])
    assert run.status == EstimationRun.Status.QUEUED
    assert run.queued_at is not None
    assert any(
        r.levelno == logging.ERROR and "broker" in r.getMessage()
        for r in caplog.records
    )
    page = client.get(response.url, **EN)
    assert page.status_code == 200
    assert "Queued" in page.content.decode()

    # within the grace period nothing is sent again
    assert run_services.redispatch_queued_runs() == 0
    later = timezone.now() + timedelta(
        minutes=django_settings.ESTIMATION_RUN_DISPATCH_GRACE + 1
    )
    assert tasks.redispatch_queued_runs_task.apply(kwargs={}).get() == 0
    assert run_services.redispatch_queued_runs(now=later) == 1
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert run.attempts == 1


def test_the_api_answers_201_queued_while_the_broker_is_down(
    staff, project, dataset, default_methodology, django_capture_on_commit_callbacks
):
    body = {
        "project": project.code,
        "dataset": dataset.pk,
        "methodology": default_methodology.pk,
        "period_start": "2021-01-01",
        "period_end": "2021-12-31",
    }
    with (
        mock.patch.object(
            tasks.execute_run_task,
            "delay",
            side_effect=kombu.exceptions.OperationalError("down"),
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _client(staff).post(f"{API}/estimation-runs/", body, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    assert EstimationRun.objects.get().status == EstimationRun.Status.QUEUED


def test_a_resend_stops_at_the_first_broker_error_and_keeps_the_rest_waiting(
    queued_run, run_for, monkeypatch
):
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run_for()
    monkeypatch.undo()
    long_ago = timezone.now() - timedelta(hours=1)
    EstimationRun.objects.update(queued_at=long_ago)
    with mock.patch.object(
        tasks.execute_run_task,
        "delay",
        side_effect=kombu.exceptions.OperationalError("still down"),
    ) as send:
        assert run_services.redispatch_queued_runs() == 0
    assert send.call_count == 1
    # both stay due: their turn comes at the next pass
    assert set(EstimationRun.objects.values_list("queued_at", flat=True)) == {long_ago}
    assert run_services.redispatch_queued_runs() == 2
    assert set(EstimationRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_run_queued_before_send_times_were_kept_is_resent(queued_run):
    EstimationRun.objects.filter(pk=queued_run.pk).update(queued_at=None)
    later = timezone.now() + timedelta(hours=1)
    assert run_services.redispatch_queued_runs(now=later) == 1
    queued_run.refresh_from_db()
    assert queued_run.status == EstimationRun.Status.SUCCEEDED


# Retry --------------------------------------------------------------------------------


def test_retrying_a_failed_run_makes_a_new_run_with_the_same_inputs(
    staff, queued_run, django_capture_on_commit_callbacks
):
    failed = _failed_run(queued_run)
    kept = EstimationRun.objects.filter(pk=failed.pk).values()[0]
    with django_capture_on_commit_callbacks(execute=True):
        retry = run_services.retry_run(actor=staff, run=failed)
    assert retry.pk != failed.pk
    assert retry.retry_of_id == failed.pk
    assert (retry.fingerprint, retry.inputs) == (failed.fingerprint, failed.inputs)
    assert retry.boundary.equals(failed.boundary)
    assert (retry.dataset_id, retry.methodology_id, retry.project_id) == (
        failed.dataset_id,
        failed.methodology_id,
        failed.project_id,
    )
    assert (retry.period_start, retry.period_end) == (
        failed.period_start,
        failed.period_end,
    )
    retry.refresh_from_db()
    assert retry.status == EstimationRun.Status.SUCCEEDED
    assert EstimationRun.objects.filter(pk=failed.pk).values()[0] == kept


def test_only_a_failed_run_can_be_retried(staff, run_for):
    run = run_for()
    with pytest.raises(StateConflict) as refused:
        run_services.retry_run(actor=staff, run=run)
    assert refused.value.code == "run_not_failed"
    assert EstimationRun.objects.count() == 1


def test_a_failed_run_is_retried_once_at_a_time(staff, queued_run, monkeypatch):
    failed = _failed_run(queued_run)
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    retry = run_services.retry_run(actor=staff, run=failed)
    with pytest.raises(StateConflict) as refused:
        run_services.retry_run(actor=staff, run=failed)
    assert refused.value.code == "already_retried"
    assert str(retry.pk) in refused.value.messages[0]
    EstimationRun.objects.filter(pk=retry.pk).update(status="failed")
    assert run_services.retry_run(actor=staff, run=failed).retry_of_id == failed.pk


def test_a_failed_run_whose_inputs_changed_is_not_retried(staff, queued_run):
    failed = _failed_run(queued_run)
    ClassMapping.objects.filter(scheme=failed.dataset.scheme, code="2").update(
        ecosystem="grassland"
    )
    with pytest.raises(StateConflict) as refused:
        run_services.retry_run(actor=staff, run=failed)
    assert refused.value.code == "inputs_changed"
    assert EstimationRun.objects.count() == 1


def test_another_organizations_staff_cannot_retry(make_user, queued_run):
    failed = _failed_run(queued_run)
    stranger = make_user(role=Role.BUREAU_STAFF)
    with pytest.raises(PermissionDenied):
        run_services.retry_run(actor=stranger, run=failed)
    assert EstimationRun.objects.count() == 1


def test_a_member_who_is_not_staff_cannot_retry(make_user, owner, queued_run):
    failed = _failed_run(queued_run)
    buyer = make_user(role=Role.BUYER, organization=owner)
    with pytest.raises(PermissionDenied):
        run_services.retry_run(actor=buyer, run=failed)
    assert EstimationRun.objects.count() == 1


def test_a_registry_admin_can_retry(registry_admin, queued_run, monkeypatch):
    failed = _failed_run(queued_run)
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    retry = run_services.retry_run(actor=registry_admin, run=failed)
    assert (retry.retry_of_id, retry.created_by_id) == (failed.pk, registry_admin.pk)


def test_retry_from_the_run_page(
    client, staff, queued_run, django_capture_on_commit_callbacks
):
    failed = _failed_run(queued_run)
    client.force_login(staff)
    url = reverse("estimation:run-detail", args=[failed.pk])
    body = client.get(url, **EN).content.decode()
    assert reverse("estimation:run-retry", args=[failed.pk]) in body
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("estimation:run-retry", args=[failed.pk]), **EN)
    retry = EstimationRun.objects.get(retry_of=failed)
    assert response.url == reverse("estimation:run-detail", args=[retry.pk])
    retry_page = client.get(response.url, **EN).content.decode()
    assert f"Run #{failed.pk} is queued again as run #{retry.pk}." in retry_page
    assert reverse("estimation:run-detail", args=[failed.pk]) in retry_page
    failed_page = client.get(url, **EN).content.decode()
    assert reverse("estimation:run-detail", args=[retry.pk]) in failed_page


def test_the_run_page_refuses_a_retry_of_a_run_that_did_not_fail(
    client, staff, run_for
):
    run = run_for()
    client.force_login(staff)
    body = client.get(
        reverse("estimation:run-detail", args=[run.pk]), **EN
    ).content.decode()
    assert reverse("estimation:run-retry", args=[run.pk]) not in body
    response = client.post(
        reverse("estimation:run-retry", args=[run.pk]), follow=True, **EN
    )
    assert "only a failed run can be retried" in response.content.decode()
    assert EstimationRun.objects.count() == 1


def test_the_run_page_offers_no_retry_to_a_registry_member_who_is_not_staff(
    client, make_user, owner, queued_run
):
    failed = _failed_run(queued_run)
    buyer = make_user(role=Role.BUYER, organization=owner)
    client.force_login(buyer)
    body = client.get(
        reverse("estimation:run-detail", args=[failed.pk]), **EN
    ).content.decode()
    assert reverse("estimation:run-retry", args=[failed.pk]) not in body
    response = client.post(reverse("estimation:run-retry", args=[failed.pk]))
    assert response.status_code == 403
    assert EstimationRun.objects.count() == 1


def test_another_organizations_staff_get_404_on_the_page_and_the_api(
    client, make_user, queued_run
):
    failed = _failed_run(queued_run)
    stranger = make_user(role=Role.BUREAU_STAFF)
    client.force_login(stranger)
    assert (
        client.post(reverse("estimation:run-retry", args=[failed.pk])).status_code
        == 404
    )
    response = _client(stranger).post(f"{API}/estimation-runs/{failed.pk}/retry/")
    assert response.status_code == 404
    assert EstimationRun.objects.count() == 1


def test_retry_through_the_api(staff, queued_run, run_for, monkeypatch):
    failed = _failed_run(queued_run)
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    response = _client(staff).post(f"{API}/estimation-runs/{failed.pk}/retry/")
    assert response.status_code == 201
    body = response.json()
    assert body["retry_of"] == failed.pk
    assert body["status"] == "queued"
    assert body["fingerprint"] == failed.fingerprint
    monkeypatch.undo()
    finished = run_for()
    refused = _client(staff).post(f"{API}/estimation-runs/{finished.pk}/retry/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "run_not_failed"


# The land-cover file check -----------------------------------------------------------


def test_upload_schedules_the_first_file_check(
    staff, owner, landcover_file, settings, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from estimation.models import ClassScheme

    settings.MEDIA_ROOT = tmp_path / "media"
    with django_capture_on_commit_callbacks(execute=True):
        dataset = dataset_services.upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="测试",
            name_en="Test",
            product="modis-igbp",
            year=2019,
            scheme=ClassScheme.objects.get(slug="modis-igbp"),
            uploaded=SimpleUploadedFile("lc.tif", landcover_file.read_bytes()),
        )
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.MATCHES
    assert dataset.file_checked_at is not None


def test_an_upload_whose_check_cannot_be_queued_is_still_stored(
    staff, owner, landcover_file, settings, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from estimation.models import ClassScheme

    settings.MEDIA_ROOT = tmp_path / "media"
    with (
        mock.patch.object(
            tasks.check_dataset_file_task,
            "delay",
            side_effect=kombu.exceptions.OperationalError("down"),
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        dataset = dataset_services.upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="测试",
            name_en="Test",
            product="modis-igbp",
            year=2019,
            scheme=ClassScheme.objects.get(slug="modis-igbp"),
            uploaded=SimpleUploadedFile("lc.tif", landcover_file.read_bytes()),
        )
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.UNCHECKED


def test_the_file_check_records_matches_differs_and_missing(dataset, caplog):
    assert dataset.file_status == LandCoverDataset.FileStatus.UNCHECKED
    assert tasks.check_dataset_file_task.apply(args=[dataset.pk]).get() == "matches"
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.MATCHES
    first_check = dataset.file_checked_at
    assert first_check is not None

    path = Path(dataset.file.path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with caplog.at_level(logging.ERROR, logger="estimation.services.datasets"):
        assert dataset_services.check_dataset_file(dataset_id=dataset.pk) == "differs"
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.DIFFERS
    assert dataset.file_checked_at >= first_check
    assert [r for r in caplog.records if r.levelno == logging.ERROR]

    path.unlink()
    assert dataset_services.check_dataset_file(dataset_id=dataset.pk) == "missing"
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.MISSING


def test_the_weekly_recheck_checks_every_dataset(dataset):
    LandCoverDataset.objects.update(file_status="differs")
    assert tasks.recheck_dataset_files_task.apply().get() == 1
    dataset.refresh_from_db()
    assert dataset.file_status == LandCoverDataset.FileStatus.MATCHES


# Pictures are made by the run's task ----------------------------------------------


def test_the_runs_task_stores_the_land_cover_picture(run_for):
    run = run_for()
    run.refresh_from_db()
    assert run.landcover_picture.name.endswith(".png")
    with run.landcover_picture.open("rb") as picture:
        assert picture.read(4) == b"\x89PNG"


def test_a_picture_that_cannot_be_drawn_leaves_the_run_succeeded(run_for, caplog):
    with (
        mock.patch(
            "estimation.maps.render_landcover_png", side_effect=OSError("no space")
        ),
        caplog.at_level(logging.ERROR, logger="estimation.services.runs"),
    ):
        run = run_for()
    run.refresh_from_db()
    assert run.status == EstimationRun.Status.SUCCEEDED
    assert not run.landcover_picture
    assert [r for r in caplog.records if r.levelno == logging.ERROR]


def test_the_page_serves_the_stored_picture_without_drawing(client, staff, run_for):
    run = run_for()
    client.force_login(staff)
    with mock.patch(
        "estimation.maps.render_landcover_png", side_effect=AssertionError("drawn")
    ):
        response = client.get(reverse("estimation:run-landcover", args=[run.pk]))
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_run_without_its_picture_yet_says_it_is_being_made(client, staff, run_for):
    run = run_for()
    EstimationRun.objects.filter(pk=run.pk).update(landcover_picture="")
    client.force_login(staff)
    body = client.get(
        reverse("estimation:run-detail", args=[run.pk]), **EN
    ).content.decode()
    assert "The land-cover picture is being made" in body
    assert reverse("estimation:run-landcover", args=[run.pk]) not in body
    picture = client.get(reverse("estimation:run-landcover", args=[run.pk]))
    assert picture.status_code == 404


# Pages read no file and answer in constant queries ---------------------------------


@pytest.fixture
def no_dataset_file_reads(dataset, monkeypatch):
    """Fails any read of the land-cover file during the block, by any route."""
    landcover = str(Path(dataset.file.path))
    real_open = builtins.open
    reads = []

    def guarded_open(file, *args, **kwargs):
        if str(file) == landcover:
            reads.append(file)
            raise AssertionError("a request read the land-cover file")
        return real_open(file, *args, **kwargs)

    def refuse(*args, **kwargs):
        reads.append(args)
        raise AssertionError("a request hashed or opened the land-cover file")

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr("rasterio.open", refuse)
    monkeypatch.setattr("estimation.maps.render_landcover_png", refuse)
    monkeypatch.setattr("estimation.fingerprints.file_sha256", refuse)
    monkeypatch.setattr(dataset_services, "stored_file_sha256", refuse)
    return reads


def _rejected_verifications(run, staff, verifier, count):
    for _ in range(count):
        verification = submit_for_verification(actor=staff, run=run)
        Verification.objects.filter(pk=verification.pk).update(
            status=Verification.Status.REJECTED,
            verifier=verifier,
            decided_at=timezone.now(),
            reasons="Redo the map.",
        )


def _page_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **EN)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_run_page_reads_no_file_and_its_queries_do_not_grow(
    client, staff, verifier, verified_run, no_dataset_file_reads
):
    LandCoverDataset.objects.update(
        file_status=LandCoverDataset.FileStatus.MATCHES, file_checked_at=timezone.now()
    )
    client.force_login(staff)
    url = reverse("estimation:run-detail", args=[verified_run.pk])
    _rejected_verifications(verified_run, staff, verifier, 1)
    one, body = _page_queries(client, url)
    _rejected_verifications(verified_run, staff, verifier, 19)
    twenty, _body = _page_queries(client, url)
    assert one == twenty
    assert no_dataset_file_reads == []
    assert "matches the upload" in body


def test_the_verification_page_reads_no_file_and_its_queries_do_not_grow(
    client, staff, verifier, verified_run, no_dataset_file_reads
):
    LandCoverDataset.objects.update(
        file_status=LandCoverDataset.FileStatus.DIFFERS, file_checked_at=timezone.now()
    )
    first = submit_for_verification(actor=staff, run=verified_run)
    Verification.objects.filter(pk=first.pk).update(
        status=Verification.Status.REJECTED,
        verifier=verifier,
        decided_at=timezone.now(),
    )
    first.refresh_from_db()
    client.force_login(staff)
    url = reverse("estimation:verification-detail", args=[first.pk])

    def revise(count):
        for _ in range(count):
            revision = submit_for_verification(
                actor=staff, run=verified_run, revises=first
            )
            Verification.objects.filter(pk=revision.pk).update(
                status=Verification.Status.REJECTED,
                verifier=verifier,
                decided_at=timezone.now(),
            )

    revise(1)
    one, body = _page_queries(client, url)
    revise(19)
    twenty, _body = _page_queries(client, url)
    assert one == twenty
    assert no_dataset_file_reads == []
    assert "differs from the upload" in body
    assert "A land-cover file has changed" in body


def test_the_guard_catches_a_read_of_the_land_cover_file(
    dataset, no_dataset_file_reads
):
    """The page tests above mean something: the hashing issuance does (the
    function as it is, not the patched name) is caught."""
    with pytest.raises(AssertionError):
        stored_file_sha256(dataset)
    with pytest.raises(AssertionError), open(dataset.file.path, "rb"):
        pass
    assert len(no_dataset_file_reads) == 2


def test_the_sweep_records_one_open_alert_for_a_run_it_failed(queued_run, mailoutbox):
    from registry.models import Alert

    _make_stale(queued_run, attempts=run_services.MAX_ATTEMPTS)
    run_services.sweep_stale_runs()
    alert = Alert.objects.get(kind=Alert.Kind.RUN_FAILED_BY_SWEEP)
    assert alert.key == f"run:{queued_run.pk}"
    assert alert.params["run"] == queued_run.pk
    assert run_services.sweep_stale_runs() == {"requeued": [], "failed": []}
    assert Alert.objects.filter(kind=Alert.Kind.RUN_FAILED_BY_SWEEP).count() == 1


def test_a_member_who_may_see_but_not_create_runs_gets_403_from_the_api(
    make_user, owner, queued_run
):
    failed = _failed_run(queued_run)
    buyer = make_user(role=Role.BUYER, organization=owner)
    assert _client(buyer).get(f"{API}/estimation-runs/{failed.pk}/").status_code == 200
    response = _client(buyer).post(f"{API}/estimation-runs/{failed.pk}/retry/")
    assert response.status_code == 403
    assert EstimationRun.objects.count() == 1
