from celery import shared_task

from trading.anchors import publish_head
from trading.services import expire_stale_requests
from trading.verification import verify_ledger


@shared_task
def expire_stale_requests_task() -> int:
    """Release pending trade requests past their expiry."""
    return expire_stale_requests()


@shared_task
def verify_ledger_task() -> bool:
    """The nightly ledger check; its result is shown to registry admins."""
    return verify_ledger().ok


@shared_task
def publish_journal_head_task() -> int | None:
    """The daily signed journal head; its sequence (None: empty journal).
    Idempotent, so a task delivered twice publishes once."""
    anchor, _created = publish_head()
    return anchor.sequence if anchor else None
