"""Settings shared by every run mode, read from the environment.

Absent variables mean the embedded default: a SpatiaLite file under ``var/`` and
Celery tasks run eagerly in-process. ``production.py`` demands the real services.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

VAR_DIR = Path(env("REGISTRY_VAR_DIR", default=str(BASE_DIR / "var")))

# Replaced in production (required there); this one only ever signs local sessions.
SECRET_KEY = env(
    "SECRET_KEY", default="embedded-default-not-secret-2f1c9d7e4b6a8c0e3d5f7a9b1c3e5d7f"
)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Production refuses to load demo data; local and test runs allow it.
DEMO_DATA_ALLOWED = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.forms",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "registry",
    "trading",
    "estimation",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.navigation.navigation",
                "config.context_processors.map_settings",
                "registry.context_processors.alerts",
            ],
        },
    },
]


# Form widgets render with the project's templates too (the boundary map widget).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"


def _embedded_database(path: Path) -> dict:
    return {
        "ENGINE": "django.contrib.gis.db.backends.spatialite",
        "NAME": str(path),
        "OPTIONS": {
            # BEGIN IMMEDIATE takes the write lock up front, so a read that turns
            # into a write never fails with "database is locked" half-way.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def _database_from_url(url: str) -> dict:
    database = env.db_url_config(url)
    if database["ENGINE"] == "django.contrib.gis.db.backends.spatialite":
        # A SpatiaLite file given by URL runs with the embedded default's options.
        embedded = _embedded_database(Path(database["NAME"]))
        embedded["OPTIONS"].update(database.get("OPTIONS", {}))
        database = {**database, "OPTIONS": embedded["OPTIONS"]}
    else:
        database.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
        database["CONN_HEALTH_CHECKS"] = True
    return database


if env("DATABASE_URL", default=""):
    DATABASES = {"default": _database_from_url(env("DATABASE_URL"))}
else:
    DATABASES = {"default": _embedded_database(VAR_DIR / "registry.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "registry.User"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login rate limit (django-axes): 5 failures for one username from one address
# lock that pair out for 15 minutes. Keyed on the pair so that nobody can lock a
# colleague out from elsewhere.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# How many reverse proxies sit in front (1 in docker-compose): the client's
# address is the one the outermost appended to X-Forwarded-For. Sign-in
# lockouts and every API throttle key on it (common/client_address.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "common.client_address.client_address"

# Mail (password links to new users): printed to the console unless EMAIL_URL
# names a server, e.g. smtp+tls://user:password@smtp.example.cn:587.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="registry@localhost")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Chinese browsers get Simplified Chinese (zh-CN, zh-TW and bare zh all fall
# back to zh-hans); every other browser gets the default, English.
LANGUAGE_CODE = "en"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Debian 12 ships GDAL 3.6, which cannot block file and network access while
# parsing a spatial reference given as free text (gis.W001). The registry never
# hands user text to GDAL's SpatialReference: users pick coordinate systems from
# an allow-list of EPSG integers, and uploaded files' own CRS definitions are
# parsed as WKT, which names no files or URLs.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# Registry rules and map settings.
REGISTRY_OVERLAP_TOLERANCE_HA = "0.1"  # boundaries may share up to this much area
REGISTRY_BOUNDARY_MAX_BYTES = 20 * 1024 * 1024
# A pending trade request releases its serials after this long unreviewed.
TRADE_REQUEST_TTL_HOURS = env.int("TRADE_REQUEST_TTL_HOURS", default=72)
# A market order waits this long for its seller to confirm the payment before
# its credits go back to the listing (a bank transfer between companies can
# take a few working days); once confirmed, the review has TRADE_REQUEST_TTL_HOURS.
MARKET_PAYMENT_HOURS = env.int("MARKET_PAYMENT_HOURS", default=168)
# The registry's Ed25519 key, which signs the journal heads it publishes
# (trading/anchors.py): PEM (PKCS#8) or base64 of the raw 32-byte key.
# DEVELOPMENT KEY BELOW: it is public (it is in the source), so anything it signs
# proves nothing; production.py refuses it and requires LEDGER_SIGNING_KEY.
DEVELOPMENT_LEDGER_SIGNING_KEY = "8w6coL38rTqpLydXMuRTD6JQs2UMq14eGbw8ojlFtqM="
LEDGER_SIGNING_KEY = env("LEDGER_SIGNING_KEY", default=DEVELOPMENT_LEDGER_SIGNING_KEY)
# Public keys (base64, raw 32 bytes) of earlier signing keys, comma-separated:
# heads signed before a change of key still check.
LEDGER_PREVIOUS_PUBLIC_KEYS = env.list("LEDGER_PREVIOUS_PUBLIC_KEYS", default=[])
LANDCOVER_MAX_BYTES = env.int("LANDCOVER_MAX_BYTES", default=2 * 1024**3)
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A base-map tile URL template (e.g. an internal tile server); empty means no base
# map: pages draw the county outlines and work offline.
MAP_TILE_URL = env("MAP_TILE_URL", default="")
MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", default="")

REDIS_URL = env("REDIS_URL", default="")

# Redis holds only what can be recomputed: while it is down the cache answers
# as a miss (common/cache.py) and pages and API throttles keep working. Short
# socket timeouts so that a Redis that hangs does not hold up a request.
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "common.cache.DegradingRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a Redis broker when REDIS_URL is set, otherwise tasks run in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# While Redis is down, sending a task gives up after about a second (the run
# stays queued for the outbox to send again) instead of Celery's default of
# twenty one-second retries on the result backend, which held a request ~19 s.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 0.5,
    }
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The queue tasks go to, including those a worker sends (the parts of a run).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# The worker and beat each record a heartbeat this often (registry/heartbeats.py);
# one older than HEARTBEAT_STALE_AFTER_SECONDS raises a "silent" alert, and
# /healthz reports both.
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=30)
HEARTBEAT_STALE_AFTER_SECONDS = env.int("HEARTBEAT_STALE_AFTER_SECONDS", default=180)
# Estimation runs (estimation/tasks.py). The largest map (2 GB) over a county
# takes minutes; an hour of work means something is wrong. The soft limit ends
# the run as failed with a reason; the hard limit, a minute later, kills a
# worker that did not stop. Redis re-delivers a message not acknowledged within
# its visibility timeout (acks_late), so that timeout must exceed the hard
# limit or a long run would be computed twice.
ESTIMATION_RUN_SOFT_TIME_LIMIT = env.int("ESTIMATION_RUN_SOFT_TIME_LIMIT", default=3600)
ESTIMATION_RUN_TIME_LIMIT = env.int(
    "ESTIMATION_RUN_TIME_LIMIT", default=ESTIMATION_RUN_SOFT_TIME_LIMIT + 60
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": ESTIMATION_RUN_TIME_LIMIT + 600
}
# A running run whose worker has given no sign of life for this many minutes
# is re-queued once, then failed (the worker beats at least every
# ESTIMATION_RUN_HEARTBEAT_SECONDS while it computes).
ESTIMATION_RUN_STALE_AFTER = env.int("ESTIMATION_RUN_STALE_AFTER", default=10)
# A run measured in parts (below) whose parts wait behind other work gives no
# sign of life: it is swept only after a part could have run its full time.
ESTIMATION_PARTS_STALE_AFTER = env.int(
    "ESTIMATION_PARTS_STALE_AFTER",
    default=ESTIMATION_RUN_TIME_LIMIT // 60 + ESTIMATION_RUN_STALE_AFTER,
)
ESTIMATION_RUN_HEARTBEAT_SECONDS = env.int(
    "ESTIMATION_RUN_HEARTBEAT_SECONDS", default=30
)
# A queued run no worker has taken within this many minutes is sent again
# (the broker may have been down, or lost the message).
ESTIMATION_RUN_DISPATCH_GRACE = env.int("ESTIMATION_RUN_DISPATCH_GRACE", default=5)
# Beat runs the sweep and the re-send every ESTIMATION_RUN_SWEEP_INTERVAL
# seconds (default 120; read in config/celery.py).
# A run over more pixels of the boundary's extent on a raster, or more
# patches in a survey layer, is measured in parts of at most these sizes, on
# as many workers as take them (a Celery chord), then added up exactly.
# (A city on a 30 m raster is ~50 M pixels, a province ~400 M.)
ESTIMATION_PART_PIXELS = env.int("ESTIMATION_PART_PIXELS", default=60_000_000)
ESTIMATION_PART_FEATURES = env.int("ESTIMATION_PART_FEATURES", default=500_000)
# Pixels of a raster read at a time (~1 byte each; 16x fewer for rasters that
# need per-pixel areas): bounds a worker's memory.
ESTIMATION_WINDOW_PIXELS = env.int("ESTIMATION_WINDOW_PIXELS", default=1 << 24)

# The REST API under /api/v1/ (config/api.py has its error format and limits).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_ANON_RATE", default="120/minute"),
        "auth": env("API_AUTH_RATE", default="10/minute"),
    },
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Bijie carbon-sink registry API",
    "DESCRIPTION": (
        "Projects, estimates, verification, issuance, holdings, trades and "
        "certificates of the Bijie carbon-sink registry. docs/api.md walks "
        "through the whole journey. Errors are JSON: a stable `code`, a "
        "`message` translated by Accept-Language (zh-CN or en) and, for bad "
        "input, `fields`. Mutations accept an `Idempotency-Key` header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "registry.models.Project.Status",
        "TradeRequestStatusEnum": "trading.models.TradeRequest.Status",
        "VerificationStatusEnum": "estimation.models.Verification.Status",
        "RunStatusEnum": "estimation.models.EstimationRun.Status",
        "AccountKindEnum": "registry.models.Account.Kind",
        "OrganizationKindEnum": "registry.models.Organization.Kind",
        "TradeRequestKindEnum": "trading.models.TradeRequest.Kind",
        "LedgerEntryKindEnum": "trading.models.LedgerEntry.Kind",
        "BlockStateEnum": "trading.models.CreditBlock.State",
        "ListingStatusEnum": "trading.models.Listing.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
