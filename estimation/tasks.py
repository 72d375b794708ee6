"""Estimation tasks: compute a run, sweep runs whose worker went silent, re-send
queued runs no worker took, and re-hash stored land-cover files. Thin: each
calls one service."""

from celery import shared_task
from django.conf import settings

from estimation.services import datasets as dataset_services
from estimation.services import runs as run_services


@shared_task(
    bind=True,
    # Acknowledged once done, and put back on the queue if the worker process
    # dies: a lost worker delays a run but does not lose it. execute_run lets
    # only one attempt compute and store a run.
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.ESTIMATION_RUN_SOFT_TIME_LIMIT,
    time_limit=settings.ESTIMATION_RUN_TIME_LIMIT,
)
def execute_run_task(self, run_id: int) -> str:
    """Compute one estimation run (safe to deliver twice: see execute_run)."""
    return run_services.execute_run(run_id=run_id).status


@shared_task
def sweep_stale_runs_task() -> dict:
    """Re-queue (once) or fail running runs whose worker gave no sign of life."""
    return run_services.sweep_stale_runs()


@shared_task
def redispatch_queued_runs_task() -> int:
    """Send again the queued runs no worker took within the grace period."""
    return run_services.redispatch_queued_runs()


@shared_task(acks_late=True)
def check_dataset_file_task(dataset_id: int) -> str:
    """Re-hash one land-cover file and record whether it still matches."""
    return dataset_services.check_dataset_file(dataset_id=dataset_id)


@shared_task
def recheck_dataset_files_task() -> int:
    """Schedule a re-check of every stored land-cover file (weekly)."""
    return dataset_services.schedule_dataset_checks()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.ESTIMATION_RUN_SOFT_TIME_LIMIT,
    time_limit=settings.ESTIMATION_RUN_TIME_LIMIT,
)
def measure_run_part_task(run_id: int, attempt: int, role: str, part: dict):
    """Measure one part of a run measured in parts (a tile, a range of patches)."""
    return run_services.measure_run_part(
        run_id=run_id, attempt=attempt, role=role, part=part
    )


@shared_task(
    acks_late=True,
    soft_time_limit=settings.ESTIMATION_RUN_SOFT_TIME_LIMIT,
    time_limit=settings.ESTIMATION_RUN_TIME_LIMIT,
)
def finish_run_in_parts_task(
    sums: list, run_id: int, attempt: int, roles: list[str]
) -> str:
    """Add up the parts of a run (the chord's callback) and store its table."""
    return run_services.finish_run_in_parts(
        run_id=run_id, attempt=attempt, roles=roles, sums=sums
    ).status
