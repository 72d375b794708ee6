import logging

from celery import shared_task

from registry.models import Alert
from registry.services import raise_alert
from trading.anchors import publish_head
from trading.market import expire_listings
from trading.services import expire_stale_requests
from trading.verification import verify_ledger

logger = logging.getLogger(__name__)

# One open alert for a failing ledger, however many nights it fails: a second
# failing night while the first alert is unacknowledged e-mails no one again.
LEDGER_ALERT_KEY = "ledger"


@shared_task
def expire_stale_requests_task() -> int:
    """Release pending trade requests past their expiry."""
    return expire_stale_requests()


@shared_task
def expire_ended_listings_task() -> int:
    """Close market listings past their end date; their unsold credits go
    back to the sellers."""
    return expire_listings()


@shared_task
def verify_ledger_task() -> bool:
    """The nightly ledger check; its result is shown to registry admins, and a
    failure is logged at ERROR and raised as an alert (e-mailed to them)."""
    report = verify_ledger()
    if not report.ok:
        logger.error(
            "Ledger check #%s failed with %d violation(s); see it in the admin "
            "(ledger checks) or run manage.py verify_ledger.",
            report.check_id,
            len(report.violations),
        )
        raise_alert(
            kind=Alert.Kind.LEDGER_CHECK_FAILED,
            key=LEDGER_ALERT_KEY,
            params={"violations": len(report.violations), "check": report.check_id},
        )
    return report.ok


@shared_task
def publish_journal_head_task() -> int | None:
    """The daily signed journal head; its sequence (None: empty journal).
    Idempotent, so a task delivered twice publishes once."""
    anchor, _created = publish_head()
    return anchor.sequence if anchor else None
