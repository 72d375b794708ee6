"""Operational endpoints."""

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry.selectors import list_heartbeat_statuses
from registry.services import check_heartbeats_if_due, heartbeats_expected


def _database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return {"ok": False, "vendor": connection.vendor, "error": str(error)}
    return {"ok": True, "vendor": connection.vendor}


def _broker_status() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER and not settings.REDIS_URL:
        return {"ok": True, "mode": "eager"}
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except redis.RedisError as error:
        return {"ok": False, "mode": "redis", "error": str(error)}
    return {"ok": True, "mode": "redis"}


def _heartbeats_unknown() -> dict:
    return {
        component: {"ok": False, "mode": "celery", "last_heartbeat": None}
        for component in ("worker", "beat")
    }


def _heartbeat_statuses(database_ok: bool) -> dict:
    """The worker's and beat's last heartbeats; eager mode has neither."""
    if not heartbeats_expected():
        return {
            component: {"ok": True, "mode": "eager", "last_heartbeat": None}
            for component in ("worker", "beat")
        }
    if not database_ok:
        return _heartbeats_unknown()
    try:
        # The probe that polls this endpoint also raises the "silent" alerts
        # when only the web process is alive (at most once a minute).
        check_heartbeats_if_due()
        statuses = list_heartbeat_statuses()
    except DatabaseError:
        return _heartbeats_unknown()
    return {
        status.component: {
            "ok": not status.silent,
            "mode": "celery",
            "last_heartbeat": status.last_heartbeat.isoformat()
            if status.last_heartbeat
            else None,
        }
        for status in statuses
    }


@never_cache
@require_GET
def healthz(request):
    """Database and broker status: 200 when both answer, 503 otherwise.

    The worker's and beat's heartbeats are reported (``ok`` false when older
    than HEARTBEAT_STALE_AFTER_SECONDS or missing) but do not make it 503: this
    answers for the web process, which a restart or a load balancer would take
    away for a fault it cannot mend; a silent worker or beat raises an alert
    instead, and ``status`` says "degraded"."""
    checks = {"database": _database_status(), "broker": _broker_status()}
    healthy = all(check["ok"] for check in checks.values())
    heartbeats = _heartbeat_statuses(checks["database"]["ok"])
    if not healthy:
        status = "unavailable"
    elif all(heartbeat["ok"] for heartbeat in heartbeats.values()):
        status = "ok"
    else:
        status = "degraded"
    return JsonResponse(
        {"status": status, **checks, **heartbeats},
        status=200 if healthy else 503,
    )
