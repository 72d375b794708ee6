from celery import shared_task
from django.db import connection

from registry import services


@shared_task(bind=True)
def ping_task(self) -> dict:
    """Round trip through the broker and the database; used to prove a worker
    is alive and configured (health checks, the production-stack tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "worker": self.request.hostname or "eager",
        "vendor": connection.vendor,
        "database": str(connection.settings_dict["NAME"]),
    }


@shared_task
def check_heartbeats_task() -> list[int]:
    """Beat's periodic look at the worker's and beat's heartbeats; the ids of
    the alerts it raised. Registry admins' pages and /healthz look too, for
    when beat or every worker is down and this task cannot run."""
    return [alert.pk for alert in services.check_heartbeats()]
