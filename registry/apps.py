from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        # Permissions are created app by app in post_migrate, and roles take
        # permissions of later apps (estimation, trading): sync after each app,
        # so the last run sees them all. The sync is idempotent and cheap.
        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="registry-roles")


def _sync_roles_after_migrate(using: str = "default", **kwargs) -> None:
    from registry.services import sync_role_groups

    sync_role_groups(using=using)
