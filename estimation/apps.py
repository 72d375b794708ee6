from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EstimationConfig(AppConfig):
    """How much: land cover, methodologies, estimation runs and verification."""

    name = "estimation"
    verbose_name = _("Estimation")
