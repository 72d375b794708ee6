"""Test settings: the embedded default unless DATABASE_URL / REDIS_URL point at the
production stack (the second stage of `make test`)."""

from config.settings.base import *  # noqa: F403
from config.settings.base import CELERY_BROKER_URL, env

# Tests run tasks in-process; the production-stage worker test switches this off
# for its own calls.
CELERY_TASK_ALWAYS_EAGER = True
PRODUCTION_STACK = CELERY_BROKER_URL != "memory://"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the source folders: no collectstatic before tests.
WHITENOISE_USE_FINDERS = True

# Tests empty the journal between transactional tests with `flush`.
LEDGER_PURGE_ALLOWED = True
# Set in the production-stack stage (scripts/production_stack.sh): the test
# database grants the application role its rights, and tests connect as it.
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="")
