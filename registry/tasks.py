from celery import shared_task
from django.db import connection


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
