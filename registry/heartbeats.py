"""Heartbeats of the Celery worker and of beat, so that a dead one is noticed
(``registry.services.check_heartbeats`` raises the alert; /healthz reports them).

The worker: ``WorkerHeartbeat``, a bootstep, puts a repeating entry on the
worker's own timer, which the main process's event loop turns. It beats while
that loop runs, whatever the prefork pool's children are computing. With
``--pool solo`` a task blocks the loop, so a task longer than
HEARTBEAT_STALE_AFTER_SECONDS reads as silence: run workers with the default
prefork pool.

Beat: ``HeartbeatScheduler`` records a heartbeat from beat's own loop, at
least every HEARTBEAT_INTERVAL_SECONDS (it wakes beat that often). Not a
scheduled task: a worker would run it, and a dead worker would then look like
a dead beat too.

Imported by config/celery.py when Django starts, so no models at import time.
"""

import logging
import socket
import time

from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

WORKER = "worker"
BEAT = "beat"


def send_heartbeat(component: str, hostname: str) -> bool:
    """Record that ``component`` is alive; False if the database could not
    be reached. A heartbeat never stops the process that sends it: the
    silence it leaves is what tells."""
    from registry.services import record_heartbeat

    close_old_connections()
    try:
        record_heartbeat(component=component, hostname=hostname)
    except Exception:
        logger.warning(
            "The %s heartbeat could not be recorded.", component, exc_info=True
        )
        return False
    finally:
        # A long-lived process keeps no connection past its age limit.
        close_old_connections()
    return True


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A heartbeat when the worker starts, then every HEARTBEAT_INTERVAL_SECONDS."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.entry = None

    def start(self, worker) -> None:
        hostname = worker.hostname or socket.gethostname()
        send_heartbeat(WORKER, hostname)
        self.entry = worker.timer.call_repeatedly(
            settings.HEARTBEAT_INTERVAL_SECONDS,
            send_heartbeat,
            (WORKER, hostname),
            priority=10,
        )

    def stop(self, worker) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


class HeartbeatScheduler(PersistentScheduler):
    """Celery's default scheduler, which also records beat's heartbeat on the
    first tick and then every HEARTBEAT_INTERVAL_SECONDS."""

    def __init__(self, *args, **kwargs):
        self._next_heartbeat = 0.0
        self._hostname = socket.gethostname()
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            send_heartbeat(BEAT, self._hostname)
            self._next_heartbeat = now + settings.HEARTBEAT_INTERVAL_SECONDS
        sleep = super().tick(*args, **kwargs)
        # Wake for the next heartbeat even when no job is due before it.
        return min(sleep, max(self._next_heartbeat - time.monotonic(), 0.1))
