"""The Celery app. Periodic jobs are declared here, in one beat schedule."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init

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
}


@worker_process_init.connect
def compile_area_kernels(**kwargs) -> None:
    """Compile (or load from numba's cache) the area engine's kernels when a
    worker process starts, not during the first estimate."""
    from estimation.area import warm_up

    warm_up()
