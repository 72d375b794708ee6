"""Reads the API needs beyond ``trading.selectors`` (kept here while that
module is being changed for certificates; they belong there afterwards)."""

from django.db.models import Q, QuerySet

from registry.roles import Role
from registry.selectors import has_role
from trading.models import TradeRequest
from trading.selectors import list_user_accounts


def list_visible_requests(*, user) -> QuerySet[TradeRequest]:
    """Trade requests the user may see: all for registry admins; otherwise
    those that move credits out of or into their organizations' accounts (as
    on their account pages)."""
    requests = TradeRequest.objects.select_related(
        "from_account", "to_account", "batch"
    ).order_by("-created_at", "-pk")
    if has_role(user, Role.REGISTRY_ADMIN):
        return requests
    accounts = list_user_accounts(user=user).values("pk")
    return requests.filter(Q(from_account__in=accounts) | Q(to_account__in=accounts))
