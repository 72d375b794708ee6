"""Embedded default for `make run`: SpatiaLite file, eager Celery, debug pages."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)

# `flush` may empty the append-only journal here (demo resets).
LEDGER_PURGE_ALLOWED = True
# PostgreSQL only: the role web/worker/beat connect as; migrate grants it its
# rights (trading/apps.py). Unset: one role, no grants.
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="")
