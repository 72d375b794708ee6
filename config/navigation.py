"""The site's navigation, filtered by the signed-in user's roles."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from registry.roles import Role
from registry.selectors import get_user_roles


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url_name: str
    # None: everyone; an empty tuple: any signed-in user; else any of these roles.
    roles: tuple[Role, ...] | None = None
    staff_only: bool = False


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem(_("Home"), "home"),
    NavItem(_("Projects"), "registry:project-list"),
    NavItem(_("Public registry"), "public:search"),
    NavItem(pgettext_lazy("carbon-credit market", "Market"), "public:market"),
    NavItem(
        _("Register a project"), "registry:project-create", roles=(Role.BUREAU_STAFF,)
    ),
    NavItem(
        _("Estimation"),
        "estimation:index",
        roles=(Role.BUREAU_STAFF, Role.VERIFIER, Role.REGISTRY_ADMIN),
    ),
    NavItem(
        _("Verification"),
        "estimation:verification-list",
        roles=(Role.BUREAU_STAFF, Role.VERIFIER, Role.REGISTRY_ADMIN),
    ),
    NavItem(
        _("My credits"), "trading:dashboard", roles=(Role.BUYER, Role.BUREAU_STAFF)
    ),
    NavItem(
        _("My market"),
        "trading:market-desk",
        roles=(Role.BUYER, Role.BUREAU_STAFF),
    ),
    NavItem(
        _("Accounts"),
        "trading:account-list",
        roles=(Role.BUREAU_STAFF, Role.BUYER, Role.REGISTRY_ADMIN),
    ),
    NavItem(_("Review queue"), "trading:review-queue", roles=(Role.REGISTRY_ADMIN,)),
    NavItem(
        _("Roles and members"),
        "registry:role-grant-queue",
        roles=(Role.REGISTRY_ADMIN,),
    ),
    NavItem(_("Journal"), "trading:journal", roles=()),
    NavItem(_("My account"), "account", roles=()),
    NavItem(_("Administration"), "admin:index", staff_only=True),
)


def visible_items(*, user, roles: list[Role]) -> list[NavItem]:
    items = []
    for item in NAV_ITEMS:
        if item.staff_only and not user.is_staff:
            continue
        if item.roles is not None:
            if not user.is_authenticated:
                continue
            if item.roles and not set(item.roles) & set(roles):
                continue
        items.append(item)
    return items


def navigation(request: HttpRequest) -> dict:
    """Template context: ``nav_items`` (label, url, active) and ``user_roles``."""
    roles = get_user_roles(user=request.user)
    items = [
        {"label": item.label, "url": reverse(item.url_name), "active": False}
        for item in visible_items(user=request.user, roles=roles)
    ]
    # The longest URL that prefixes the current path is the active item.
    matches = [
        item
        for item in items
        if request.path == item["url"]
        or (item["url"] != "/" and request.path.startswith(item["url"]))
    ]
    if matches:
        max(matches, key=lambda item: len(item["url"]))["active"] = True
    return {"nav_items": items, "user_roles": roles}
