"""Someone is told (issue 15, part 3): alerts are recorded once per open
(kind, key), logged at ERROR, e-mailed to every active registry admin after the
transaction commits, shown on registry admins' pages until one acknowledges
them; the worker's and beat's heartbeats raise "silent" alerts."""

import logging
import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from common.errors import NotPermitted, StateConflict
from registry import heartbeats, services
from registry.context_processors import ALERTS_SHOWN, alerts
from registry.models import Alert, Heartbeat
from registry.roles import Role
from registry.selectors import get_user_roles, list_alert_recipients
from registry.tasks import check_heartbeats_task
from tests.test_production_stack import celery_worker_process  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

# Tasks run in-process in the tests; heartbeats are only expected with a worker.
WITH_WORKERS = override_settings(CELERY_TASK_ALWAYS_EAGER=False)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def bureau_staff(make_user):
    return make_user(role=Role.BUREAU_STAFF)


def _raise(**overrides) -> Alert:
    fields = {
        "kind": Alert.Kind.RUN_FAILED_BY_SWEEP,
        "key": "run:12",
        "params": {"run": 12, "reason": "worker_lost"},
    }
    return services.raise_alert(**{**fields, **overrides})


def _message(alert: Alert, language: str) -> str:
    with translation.override(language):
        return alert.message


# Raising: once per open (kind, key), logged, e-mailed on commit ------------------


def test_an_alert_is_recorded_open_and_logged_at_error(admin, caplog):
    with caplog.at_level(logging.INFO, logger="registry.services"):
        alert = _raise()
    assert alert.is_open
    assert Alert.objects.get().params == {"run": 12, "reason": "worker_lost"}
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Estimation run #12 was failed by the sweep" in errors[0].getMessage()
    assert "run_failed_by_sweep" in errors[0].getMessage()


def test_raising_an_open_alert_again_does_not_repeat_it(
    admin, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _raise()
    caplog.clear()
    with (
        caplog.at_level(logging.ERROR, logger="registry.services"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        again = _raise(params={"run": 12, "reason": "something else"})
    assert again.pk == first.pk
    assert Alert.objects.count() == 1
    assert callbacks == []
    assert len(mail.outbox) == 1
    assert caplog.records == []


def test_another_key_or_kind_is_another_alert(admin):
    first = _raise()
    assert _raise(key="run:13").pk != first.pk
    assert _raise(kind=Alert.Kind.LEDGER_CHECK_FAILED).pk != first.pk
    assert Alert.objects.count() == 3


def test_an_acknowledged_alert_raised_again_is_a_new_open_alert(admin):
    first = _raise()
    services.acknowledge_alert(actor=admin, alert=first)
    second = _raise()
    assert second.pk != first.pk
    assert second.is_open


def test_the_database_allows_one_open_alert_per_kind_and_key(admin):
    _raise()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(kind=Alert.Kind.RUN_FAILED_BY_SWEEP, key="run:12")


def test_a_twin_raised_at_the_same_moment_is_the_alert(admin):
    """Another process committed the same alert between the look and the insert:
    its row is returned, nothing fails."""
    twin = Alert.objects.create(kind=Alert.Kind.RUN_FAILED_BY_SWEEP, key="run:12")
    with mock.patch.object(
        services, "find_open_alert", side_effect=[None, twin]
    ) as find:
        assert _raise().pk == twin.pk
    assert find.call_count == 2
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "disk_full"}, "kind"),
        ({"key": ""}, "key"),
        ({"params": {"since": timezone.now()}}, "params"),
    ],
)
def test_a_bad_alert_is_refused_and_nothing_is_recorded(admin, fields, field):
    with pytest.raises(ValidationError) as error:
        _raise(**fields)
    assert field in error.value.message_dict
    assert not Alert.objects.exists()
    assert mail.outbox == []


def test_the_mail_goes_after_commit_to_every_active_registry_admin_only(
    admin,
    second_admin,
    make_user,
    operator,
    bureau_staff,
    django_capture_on_commit_callbacks,
):
    make_user(role=Role.REGISTRY_ADMIN, organization=operator, is_active=False)
    make_user(role=Role.REGISTRY_ADMIN, organization=operator, email="")
    make_user(role=Role.VERIFIER)
    with django_capture_on_commit_callbacks() as callbacks:
        _raise()
        assert mail.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    # One message each: nobody sees the others' addresses.
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [admin.email, second_admin.email]
    )
    assert all(len(message.to) == 1 and not message.cc for message in mail.outbox)
    assert list_alert_recipients() == sorted([admin.email, second_admin.email])


def test_an_address_two_admins_share_gets_one_mail(admin, make_user, operator):
    make_user(role=Role.REGISTRY_ADMIN, organization=operator, email=admin.email)
    assert list_alert_recipients() == [admin.email]


def test_no_mail_when_the_transaction_that_raised_it_rolls_back(
    admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                _raise()
                raise RuntimeError("the sweep failed half-way")
        except RuntimeError:
            pass
    assert callbacks == []
    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_the_mail_is_in_chinese_and_english(admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alert = _raise(
            kind=Alert.Kind.LEDGER_CHECK_FAILED,
            key="ledger",
            params={"violations": 3, "check": 7},
        )
    (message,) = mail.outbox
    assert message.subject == (
        "碳汇登记簿告警：账本核查未通过 / "
        "Carbon-sink registry alert: Ledger check failed"
    )
    assert "夜间账本核查发现违规项：3 项。" in message.body
    assert "Violations found by the nightly ledger check: 3." in message.body
    assert message.body.index("夜间账本核查") < message.body.index("Violations found")
    raised_at = timezone.localtime(alert.raised_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f"发出时间：{raised_at} +0800" in message.body
    assert f"Raised at {raised_at} +0800" in message.body


def test_a_mail_failure_is_logged_never_raised(
    admin, caplog, django_capture_on_commit_callbacks
):
    failing = mock.patch.object(
        services, "get_connection", side_effect=smtplib.SMTPException("relay refused")
    )
    with (
        failing,
        caplog.at_level(logging.ERROR, logger="registry.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        alert = _raise()
    assert Alert.objects.get().pk == alert.pk
    failures = [
        record
        for record in caplog.records
        if "could not be e-mailed" in record.getMessage()
    ]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info[0] is smtplib.SMTPException


def test_no_admin_with_an_address_is_logged_at_error(caplog, make_user):
    make_user(role=Role.REGISTRY_ADMIN, email="")
    alert = _raise()
    with caplog.at_level(logging.ERROR, logger="registry.services"):
        assert services.email_alert(alert_id=alert.pk) == 0
    assert mail.outbox == []
    assert "nobody was e-mailed" in caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.ERROR


# Messages, per kind, in both languages --------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "english", "chinese"),
    [
        (
            Alert.Kind.LEDGER_CHECK_FAILED,
            {"violations": 2},
            "Violations found by the nightly ledger check: 2.",
            "夜间账本核查发现违规项：2 项。",
        ),
        (
            Alert.Kind.LEDGER_CHECK_FAILED,
            {},
            "The nightly ledger check found violations.",
            "夜间账本核查发现违规项。",
        ),
        (
            Alert.Kind.RUN_FAILED_BY_SWEEP,
            {"run": 12, "reason": "worker_lost"},
            "Estimation run #12 was failed by the sweep: its worker stopped twice, "
            "so it was not re-queued again.",
            "估算任务 #12 已被巡检判定为失败：其工作进程两次中断，因此不再重新排队。",
        ),
        (
            Alert.Kind.RUN_FAILED_BY_SWEEP,
            {"run": 12, "reason": "disk full"},
            "Estimation run #12 was failed by the sweep: disk full.",
            "估算任务 #12 已被巡检判定为失败：disk full。",
        ),
        (
            Alert.Kind.WORKER_SILENT,
            {"since": "2026-03-01T02:00:00+00:00"},
            "The Celery worker has been silent since 2026-03-01 10:00:00 +0800.",
            "Celery 工作进程自 2026-03-01 10:00:00 +0800 起无响应。",
        ),
        (
            Alert.Kind.WORKER_SILENT,
            {"since": None},
            "No Celery worker has ever sent a heartbeat.",
            "从未收到任何 Celery 工作进程的心跳。",
        ),
        (
            Alert.Kind.BEAT_SILENT,
            {"since": "2026-03-01T02:00:00+00:00"},
            "Celery beat has been silent since 2026-03-01 10:00:00 +0800.",
            "Celery 定时调度自 2026-03-01 10:00:00 +0800 起无响应。",
        ),
        (
            Alert.Kind.BEAT_SILENT,
            {},
            "Celery beat has never sent a heartbeat.",
            "从未收到 Celery 定时调度的心跳。",
        ),
    ],
    ids=[
        "ledger",
        "ledger-without-count",
        "run-worker-lost",
        "run-other-reason",
        "worker-silent",
        "worker-never-heard",
        "beat-silent",
        "beat-never-heard",
    ],
)
def test_each_kind_says_what_happened_in_the_readers_language(
    kind, params, english, chinese
):
    alert = Alert(kind=kind, key="k", params=params)
    assert _message(alert, "en") == english
    assert _message(alert, "zh-hans") == chinese


# The banner --------------------------------------------------------------------


def test_registry_admins_see_open_alerts_on_every_page_in_english(client, admin):
    alert = _raise()
    acknowledged = _raise(key="run:99", params={"run": 99, "reason": "old"})
    services.acknowledge_alert(actor=admin, alert=acknowledged)
    client.force_login(admin)
    for url in ("/", reverse("registry:project-list"), reverse("trading:review-queue")):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "Estimation run #12 was failed by the sweep" in page, url
        assert reverse("registry:alert-acknowledge", args=[alert.pk]) in page
        assert ">Acknowledge</button>" in page
        assert "csrfmiddlewaretoken" in page
        assert "Estimation run #99" not in page


def test_registry_admins_see_the_banner_in_chinese(client, admin):
    _raise(kind=Alert.Kind.BEAT_SILENT, key="beat:never", params={"since": None})
    client.force_login(admin)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "Celery 定时调度无响应" in page
    assert "从未收到 Celery 定时调度的心跳。" in page
    assert ">确认</button>" in page


@pytest.mark.parametrize("role", [Role.BUREAU_STAFF, Role.VERIFIER, Role.BUYER, None])
def test_nobody_else_sees_the_banner(client, make_user, role):
    _raise()
    client.force_login(make_user(role=role))
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Estimation run #12" not in page
    assert "Acknowledge" not in page


def test_anonymous_visitors_do_not_see_the_banner(client):
    _raise()
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Estimation run #12" not in page


def test_the_banner_shows_twenty_and_points_to_the_rest(client, admin):
    for number in range(ALERTS_SHOWN + 1):
        _raise(key=f"run:{number}", params={"run": number, "reason": "x"})
    client.force_login(admin)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count(">Acknowledge</button>") == ALERTS_SHOWN
    assert "More open alerts are listed in the administration." in page


# Acknowledging ------------------------------------------------------------------


def test_a_registry_admin_acknowledges_an_alert_once(admin, second_admin):
    alert = _raise()
    services.acknowledge_alert(actor=admin, alert=alert)
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin
    assert alert.acknowledged_at is not None
    with pytest.raises(StateConflict) as error:
        services.acknowledge_alert(actor=second_admin, alert=alert)
    assert error.value.code == "alert_acknowledged"
    assert admin.get_username() in error.value.messages[0]
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin


@pytest.mark.parametrize("role", [Role.BUREAU_STAFF, Role.VERIFIER, Role.BUYER, None])
def test_nobody_else_may_acknowledge(make_user, role):
    alert = _raise()
    with pytest.raises(NotPermitted) as error:
        services.acknowledge_alert(actor=make_user(role=role), alert=alert)
    assert error.value.code == "alert_not_permitted"
    alert.refresh_from_db()
    assert alert.is_open


def test_an_inactive_registry_admin_may_not_acknowledge(make_user, operator):
    former = make_user(role=Role.REGISTRY_ADMIN, organization=operator, is_active=False)
    alert = _raise()
    with pytest.raises(NotPermitted):
        services.acknowledge_alert(actor=former, alert=alert)
    alert.refresh_from_db()
    assert alert.is_open


def test_the_button_acknowledges_and_returns_to_the_page(client, admin):
    alert = _raise()
    client.force_login(admin)
    response = client.post(
        reverse("registry:alert-acknowledge", args=[alert.pk]),
        {"next": "/projects/?status=registered"},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/projects/?status=registered"
    page = response.content.decode()
    assert "Alert acknowledged: it is no longer shown to the registry admins." in page
    assert "Estimation run #12" not in page
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin


def test_a_second_acknowledgement_says_who_did_it_first(client, admin, second_admin):
    alert = _raise()
    services.acknowledge_alert(actor=second_admin, alert=alert)
    client.force_login(admin)
    response = client.post(
        reverse("registry:alert-acknowledge", args=[alert.pk]),
        {"next": "/"},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
        follow=True,
    )
    page = response.content.decode()
    assert f"{second_admin.get_username()} 已于" in page
    assert "确认此告警" in page
    alert.refresh_from_db()
    assert alert.acknowledged_by == second_admin


def test_the_button_never_sends_anyone_to_another_site(client, admin):
    alert = _raise()
    client.force_login(admin)
    response = client.post(
        reverse("registry:alert-acknowledge", args=[alert.pk]),
        {"next": "https://evil.example.com/"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    alert.refresh_from_db()
    assert not alert.is_open


@pytest.mark.parametrize("role", [Role.BUREAU_STAFF, Role.VERIFIER, Role.BUYER])
def test_the_button_refuses_everyone_else(client, make_user, role):
    alert = _raise()
    client.force_login(make_user(role=role))
    response = client.post(
        reverse("registry:alert-acknowledge", args=[alert.pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.is_open


def test_the_button_needs_a_sign_in_and_a_post(client, admin):
    alert = _raise()
    url = reverse("registry:alert-acknowledge", args=[alert.pk])
    response = client.post(url)
    assert response["Location"].startswith(reverse("login"))
    client.force_login(admin)
    assert client.get(url).status_code == 405
    alert.refresh_from_db()
    assert alert.is_open


def test_the_button_for_a_missing_alert_is_404(client, admin):
    client.force_login(admin)
    url = reverse("registry:alert-acknowledge", args=[424242])
    assert client.post(url).status_code == 404


# Query counts of the banner -------------------------------------------------------


def _context_queries(user) -> tuple[int, dict]:
    request = RequestFactory().get("/")
    request.user = user
    get_user_roles(user=user)  # as the navigation does first, on every page
    with CaptureQueriesContext(connection) as queries:
        context = alerts(request)
    return len(queries), context


@pytest.mark.parametrize("count", [1, 20])
def test_the_banner_costs_one_query_whatever_the_number_of_alerts(admin, count):
    for number in range(count):
        _raise(key=f"run:{number}", params={"run": number, "reason": "x"})
    queries, context = _context_queries(admin)
    assert queries == 1
    assert len(context["open_alerts"]) == count


def test_the_banner_costs_nothing_for_others(bureau_staff):
    from django.contrib.auth.models import AnonymousUser

    _raise()
    assert _context_queries(bureau_staff) == (0, {})
    assert _context_queries(AnonymousUser()) == (0, {})


@WITH_WORKERS
def test_with_workers_the_banner_checks_heartbeats_at_most_once_a_minute(admin):
    fresh = timezone.now()
    for component in Heartbeat.Component.values:
        services.record_heartbeat(component=component, now=fresh)
    first, _context = _context_queries(admin)
    second, _context = _context_queries(admin)
    assert first == 2  # the heartbeats, then the alerts
    assert second == 1


# Heartbeats ---------------------------------------------------------------------


def _beat_all(at):
    for component in Heartbeat.Component.values:
        services.record_heartbeat(component=component, hostname="host-a", now=at)


def test_a_heartbeat_is_one_row_per_component_last_writer_wins():
    now = timezone.now()
    services.record_heartbeat(component="worker", hostname="a", now=now)
    services.record_heartbeat(component="worker", hostname="b", now=now + timedelta(1))
    row = Heartbeat.objects.get()
    assert (row.hostname, row.beat_at) == ("b", now + timedelta(1))


def test_an_unknown_component_is_refused():
    with pytest.raises(ValueError):
        services.record_heartbeat(component="flower")
    assert not Heartbeat.objects.exists()


@WITH_WORKERS
def test_fresh_heartbeats_raise_nothing(admin):
    now = timezone.now()
    _beat_all(now - timedelta(seconds=179))
    assert services.check_heartbeats(now=now) == []
    assert not Alert.objects.exists()


@WITH_WORKERS
@override_settings(HEARTBEAT_STALE_AFTER_SECONDS=60)
def test_a_silent_worker_raises_one_alert_per_outage(admin):
    now = timezone.now()

    def check_at(minutes: int) -> list[Alert]:
        at = now + timedelta(minutes=minutes)
        services.record_heartbeat(component="beat", now=at)  # beat is fine
        return services.check_heartbeats(now=at)

    services.record_heartbeat(component="worker", now=now - timedelta(seconds=61))
    (alert,) = check_at(0)
    assert alert.kind == Alert.Kind.WORKER_SILENT
    assert alert.params == {"since": (now - timedelta(seconds=61)).isoformat()}
    assert _message(alert, "en").startswith("The Celery worker has been silent since")
    # Still silent, even once acknowledged: not again for the same outage.
    assert check_at(5) == []
    services.acknowledge_alert(actor=admin, alert=alert)
    assert check_at(10) == []
    # Back, then silent again: a new outage, a new alert.
    services.record_heartbeat(component="worker", now=now + timedelta(minutes=11))
    assert check_at(11) == []
    (again,) = check_at(13)
    assert again.kind == Alert.Kind.WORKER_SILENT
    assert again.pk != alert.pk


@WITH_WORKERS
def test_a_silent_beat_raises_beat_silent(admin):
    now = timezone.now()
    _beat_all(now)
    services.record_heartbeat(component="beat", now=now - timedelta(seconds=181))
    (alert,) = services.check_heartbeats(now=now)
    assert alert.kind == Alert.Kind.BEAT_SILENT


@WITH_WORKERS
def test_a_component_never_heard_from_gets_the_stale_period_first(admin):
    now = timezone.now()
    services.record_heartbeat(component="beat", now=now)
    assert services.check_heartbeats(now=now) == []
    assert services.check_heartbeats(now=now + timedelta(seconds=179)) == []
    services.record_heartbeat(component="beat", now=now + timedelta(seconds=180))
    (alert,) = services.check_heartbeats(now=now + timedelta(seconds=180))
    assert (alert.kind, alert.key) == (Alert.Kind.WORKER_SILENT, "worker:never")
    assert _message(alert, "en") == "No Celery worker has ever sent a heartbeat."


def test_in_eager_mode_there_is_nothing_to_hear_from(admin):
    assert services.check_heartbeats(now=timezone.now() + timedelta(days=1)) == []
    assert services.check_heartbeats_if_due() == []
    assert not Alert.objects.exists()


@WITH_WORKERS
def test_the_check_from_pages_runs_at_most_once_a_minute(admin):
    now = timezone.now()
    _beat_all(now - timedelta(hours=1))
    with mock.patch.object(
        services, "check_heartbeats", wraps=services.check_heartbeats
    ) as check:
        first = services.check_heartbeats_if_due()
        assert services.check_heartbeats_if_due() == []
        assert check.call_count == 1
        cache.delete("registry:heartbeat-check")  # a minute later
        services.check_heartbeats_if_due()
        assert check.call_count == 2
    assert {alert.kind for alert in first} == {
        Alert.Kind.WORKER_SILENT,
        Alert.Kind.BEAT_SILENT,
    }


@WITH_WORKERS
def test_the_check_from_pages_is_skipped_when_the_cache_is_down(admin, caplog):
    _beat_all(timezone.now() - timedelta(hours=1))
    with (
        mock.patch.object(services.cache, "add", side_effect=ConnectionError("down")),
        caplog.at_level(logging.WARNING, logger="registry.services"),
    ):
        assert services.check_heartbeats_if_due() == []
    assert not Alert.objects.exists()
    assert "cache is unavailable" in caplog.records[-1].getMessage()


@WITH_WORKERS
def test_an_admins_page_notices_a_dead_worker_without_celery(client, admin):
    """Only the web process is alive: an admin's page view raises the alert."""
    _beat_all(timezone.now() - timedelta(hours=1))
    client.force_login(admin)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "The Celery worker has been silent since" in page
    assert "Celery beat has been silent since" in page
    assert Alert.objects.filter(acknowledged_at__isnull=True).count() == 2


@WITH_WORKERS
def test_the_periodic_task_raises_the_alerts(admin):
    _beat_all(timezone.now() - timedelta(hours=1))
    raised = check_heartbeats_task.apply().get()
    assert sorted(raised) == sorted(Alert.objects.values_list("pk", flat=True))
    assert len(raised) == 2


# Sending heartbeats: the worker's bootstep and beat's scheduler --------------------


@pytest.fixture
def connection_hygiene():
    """A long-lived worker or beat drops old connections around each heartbeat;
    here that would close the test's own transaction."""
    with mock.patch.object(heartbeats, "close_old_connections") as close:
        yield close


def test_the_worker_beats_on_start_and_on_its_timer(connection_hygiene):
    worker = mock.Mock(hostname="celery@host-w")
    step = heartbeats.WorkerHeartbeat(worker)
    step.start(worker)
    row = Heartbeat.objects.get(component="worker")
    assert row.hostname == "celery@host-w"
    interval, function, arguments = worker.timer.call_repeatedly.call_args.args
    assert interval == 30
    Heartbeat.objects.all().delete()
    function(*arguments)
    assert Heartbeat.objects.get().component == "worker"
    step.stop(worker)
    worker.timer.call_repeatedly.return_value.cancel.assert_called_once_with()
    assert connection_hygiene.call_count == 4  # before and after each heartbeat


def test_a_heartbeat_that_cannot_be_written_stops_nothing(caplog, connection_hygiene):
    from django.db import OperationalError

    with (
        mock.patch.object(
            services, "record_heartbeat", side_effect=OperationalError("gone")
        ),
        caplog.at_level(logging.WARNING, logger="registry.heartbeats"),
    ):
        assert heartbeats.send_heartbeat("worker", "h") is False
    assert "could not be recorded" in caplog.records[-1].getMessage()


def test_beat_records_its_heartbeat_and_wakes_for_the_next(
    tmp_path, connection_hygiene
):
    from config.celery import app

    scheduler = heartbeats.HeartbeatScheduler(
        app=app, schedule_filename=str(tmp_path / "schedule"), lazy=True
    )
    with mock.patch.object(
        heartbeats.PersistentScheduler, "tick", return_value=300.0
    ) as tick:
        sleep = scheduler.tick()
        assert Heartbeat.objects.get(component="beat")
        assert 29 <= sleep <= 30
        Heartbeat.objects.all().delete()
        # Not due again yet: no second write.
        scheduler.tick()
        assert not Heartbeat.objects.exists()
        tick.return_value = 5.0
        assert scheduler.tick() == 5.0
    assert tick.call_count == 3


def test_the_celery_app_is_wired_for_heartbeats():
    from config.celery import app

    assert heartbeats.WorkerHeartbeat in app.steps["worker"]
    assert app.conf.beat_scheduler == "registry.heartbeats:HeartbeatScheduler"
    entry = app.conf.beat_schedule["check-heartbeats"]
    assert entry["task"] == "registry.tasks.check_heartbeats_task"


# The Django admin: read-only ------------------------------------------------------


def test_registry_admins_read_alerts_in_the_django_admin(client, admin):
    admin.is_staff = True
    admin.save()
    alert = _raise()
    client.force_login(admin)
    changelist = client.get(
        reverse("admin:registry_alert_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Estimation run #12 was failed by the sweep" in changelist
    detail = client.get(
        reverse("admin:registry_alert_change", args=[alert.pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "run:12" in detail
    assert 'name="_save"' not in detail
    response = client.post(
        reverse("admin:registry_alert_delete", args=[alert.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert client.get(reverse("admin:registry_alert_add")).status_code == 403
    assert Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).exists()


# A real worker and a real beat (production-stack stage) ----------------------------


@pytest.mark.production_stack
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_and_beat_record_their_heartbeats(request, settings, tmp_path):
    """The worker's bootstep and beat's scheduler write through the test
    database; /healthz (with workers) then reports both fresh."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": (
            f"postgis://{database['USER']}:{database['PASSWORD']}@{database['HOST']}"
            f":{database['PORT']}/{connection.settings_dict['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    beat = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "beat",
            "--schedule",
            str(tmp_path / "celerybeat-schedule"),
            "--loglevel",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    queue = request.getfixturevalue("celery_worker_process")
    try:
        deadline = time.monotonic() + 60
        rows = {}
        while time.monotonic() < deadline and len(rows) < 2:
            rows = {row.component: row for row in Heartbeat.objects.all()}
            time.sleep(0.5)
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    assert set(rows) == {"worker", "beat"}
    assert rows["worker"].hostname.startswith(queue)
    assert timezone.now() - rows["beat"].beat_at < timedelta(seconds=60)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from django.test import Client

    data = Client().get("/healthz").json()
    assert data["worker"]["ok"] is True
    assert data["beat"]["ok"] is True
    assert data["status"] == "ok"
