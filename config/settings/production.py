"""Production: PostgreSQL/PostGIS, Redis, gunicorn behind a TLS-terminating proxy.

Every secret and address comes from the environment; a missing one stops start-up.
`python manage.py check --deploy` is clean with these settings.
"""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    DEVELOPMENT_LEDGER_SIGNING_KEY,
    REDIS_CACHE_OPTIONS,
    env,
)

DEBUG = False
DEMO_DATA_ALLOWED = False

SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The role web, worker and beat connect as, given to the migrate service, which
# connects as the owner and grants it its rights (trading/apps.py).
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="")
# `flush` would empty the append-only journal: refused here.
LEDGER_PURGE_ALLOWED = False

# The key that signs the published journal heads: required, never the
# development key from base.py (anyone can sign with that one).
LEDGER_SIGNING_KEY = env("LEDGER_SIGNING_KEY")
if LEDGER_SIGNING_KEY.strip() == DEVELOPMENT_LEDGER_SIGNING_KEY:
    raise ImproperlyConfigured(
        "LEDGER_SIGNING_KEY is the public development key: set the registry's own."
    )

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "common.cache.DegradingRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": REDIS_CACHE_OPTIONS,
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# TLS ends at the proxy, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Container health checks call /healthz over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
