"""Embedded default for `make run`: SpatiaLite file, eager Celery, debug pages."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)
