from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        # Permissions are created in post_migrate too, so the role groups are
        # synced after every migrate, once all apps' permissions exist.
        post_migrate.connect(_sync_roles_after_migrate, sender=self)


def _sync_roles_after_migrate(using: str = "default", **kwargs) -> None:
    from registry.services import sync_role_groups

    sync_role_groups(using=using)
