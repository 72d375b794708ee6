from registry.selectors import list_open_alerts, may_see_alerts
from registry.services import check_heartbeats_if_due

# A banner, not a list: the rest are in the administration.
ALERTS_SHOWN = 20


def alerts(request) -> dict:
    """``open_alerts`` for the banner on registry admins' pages: one query,
    none for anyone else (their roles are already known from the navigation).
    At most once a minute it also checks the worker's and beat's heartbeats,
    so a silent one is noticed while only the web process is alive."""
    user = getattr(request, "user", None)
    if user is None or not may_see_alerts(user):
        return {}
    check_heartbeats_if_due()
    open_alerts = list(list_open_alerts()[: ALERTS_SHOWN + 1])
    return {
        "open_alerts": open_alerts[:ALERTS_SHOWN],
        "more_open_alerts": len(open_alerts) > ALERTS_SHOWN,
    }
