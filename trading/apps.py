from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TradingConfig(AppConfig):
    """What moves: serial blocks, the ledger journal, trade requests, certificates."""

    name = "trading"
    verbose_name = _("Trading")
