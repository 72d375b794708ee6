from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from registry.roles import Role


def grant_rights_after_migrate(using: str, **kwargs) -> None:
    """After every migrate (and flush), give the application role named by
    DATABASE_APP_ROLE its rights on PostgreSQL, tables made by later
    migrations included. Unset (embedded, development): one role, no grants."""
    from trading.db_guards import ApplicationRoleError, grant_application_role

    role = getattr(settings, "DATABASE_APP_ROLE", "")
    connection = connections[using]
    if not role or connection.vendor != "postgresql":
        return
    try:
        grant_application_role(connection, role)
    except ApplicationRoleError as error:
        raise ImproperlyConfigured(str(error)) from error


class TradingConfig(AppConfig):
    """What moves: serial blocks, the ledger journal, trade requests, certificates."""

    name = "trading"
    verbose_name = _("Trading")
    # Registry admins see the ledger in the Django admin; nobody edits it there
    # (merged into the role groups by registry.roles.role_permissions).
    role_permissions = {
        Role.REGISTRY_ADMIN: (
            "trading.view_creditbatch",
            "trading.view_creditblock",
            "trading.view_ledgerentry",
            "trading.view_traderequest",
            "trading.view_ledgercheck",
            "trading.view_listing",
            "trading.view_order",
        )
    }

    def ready(self):
        post_migrate.connect(
            grant_rights_after_migrate,
            sender=self,
            dispatch_uid="trading.grant_rights_after_migrate",
        )
