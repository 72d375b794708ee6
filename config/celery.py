"""The Celery app. Periodic jobs are declared here, in one beat schedule."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init

from registry.heartbeats import WorkerHeartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Pending trade requests past their expiry give their serials back.
    "expire-stale-trade-requests": {
        "task": "trading.tasks.expire_stale_requests_task",
        "schedule": 300.0,
    },
    # Market listings past their end date give their unsold credits back.
    "expire-ended-listings": {
        "task": "trading.tasks.expire_ended_listings_task",
        "schedule": crontab(minute="*/15"),
    },
    # Every invariant of the ledger, re-checked each night (Beijing time).
    "verify-ledger-nightly": {
        "task": "trading.tasks.verify_ledger_task",
        "schedule": crontab(hour=2, minute=30),
    },
    # The journal's head, signed and published once a day (idempotent).
    "publish-journal-head-daily": {
        "task": "trading.tasks.publish_journal_head_task",
        "schedule": crontab(hour=3, minute=0),
    },
    # A worker or beat silent for HEARTBEAT_STALE_AFTER_SECONDS raises an
    # alert (admins' pages and /healthz check too, for when this cannot run).
    "check-heartbeats": {
        "task": "registry.tasks.check_heartbeats_task",
        "schedule": 60.0,
    },
    # Running estimation runs whose worker went silent: re-queued once, then
    # failed. Every ESTIMATION_RUN_SWEEP_INTERVAL seconds (read here, not from
    # Django's settings, which load after this module).
    "sweep-stale-estimation-runs": {
        "task": "estimation.tasks.sweep_stale_runs_task",
        "schedule": float(os.environ.get("ESTIMATION_RUN_SWEEP_INTERVAL", "120")),
    },
    # Queued runs no worker took (the broker was down): sent again.
    "redispatch-queued-estimation-runs": {
        "task": "estimation.tasks.redispatch_queued_runs_task",
        "schedule": float(os.environ.get("ESTIMATION_RUN_SWEEP_INTERVAL", "120")),
    },
    # Every stored land-cover file re-hashed weekly (Sunday night, Beijing time).
    "recheck-landcover-files-weekly": {
        "task": "estimation.tasks.recheck_dataset_files_task",
        "schedule": crontab(day_of_week=0, hour=4, minute=0),
    },
}

# Heartbeats (registry/heartbeats.py): the worker's from a bootstep on its
# timer, beat's from its scheduler's own loop.
app.steps["worker"].add(WorkerHeartbeat)
app.conf.beat_scheduler = "registry.heartbeats:HeartbeatScheduler"


@worker_process_init.connect
def compile_area_kernels(**kwargs) -> None:
    """Compile (or load from numba's cache) the area engine's kernels when a
    worker process starts, not during the first estimate."""
    from estimation.area import warm_up

    warm_up()
