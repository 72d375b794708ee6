"""Test settings: the embedded default unless DATABASE_URL / REDIS_URL point at the
production stack (the second stage of `make test`)."""

from config.settings.base import *  # noqa: F403
from config.settings.base import CELERY_BROKER_URL

# Tests run tasks in-process; the production-stage worker test switches this off
# for its own calls.
CELERY_TASK_ALWAYS_EAGER = True
PRODUCTION_STACK = CELERY_BROKER_URL != "memory://"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the source folders: no collectstatic before tests.
WHITENOISE_USE_FINDERS = True
