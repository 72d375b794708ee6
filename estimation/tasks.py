from celery import shared_task

from estimation.services.runs import execute_run


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def execute_run_task(self, run_id: int) -> str:
    """Compute one estimation run (safe to run twice: see execute_run)."""
    return execute_run(run_id=run_id).status
