from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from registry.roles import Role


class EstimationConfig(AppConfig):
    """How much: land cover, methodologies, estimation runs and verification."""

    name = "estimation"
    verbose_name = _("Estimation")
    # Registry admins keep the class schemes and methodologies and see the rest
    # (merged into the role groups by registry.roles.role_permissions).
    role_permissions = {
        Role.REGISTRY_ADMIN: (
            "estimation.view_classscheme",
            "estimation.add_classscheme",
            "estimation.change_classscheme",
            "estimation.view_classmapping",
            "estimation.add_classmapping",
            "estimation.change_classmapping",
            "estimation.delete_classmapping",
            "estimation.view_methodology",
            "estimation.add_methodology",
            "estimation.change_methodology",
            "estimation.view_coefficient",
            "estimation.add_coefficient",
            "estimation.change_coefficient",
            "estimation.delete_coefficient",
            "estimation.view_landcoverdataset",
            "estimation.view_estimationrun",
            "estimation.view_ecosystemresult",
            "estimation.view_verification",
        )
    }
