"""Site settings, read from the environment.

With no environment at all a site runs on the embedded default: SQLite and local
files under ``FEDWEB_DATA_DIR`` (``./var``), Celery over a file-system broker and an
in-memory channel layer, so ``make demo`` needs nothing but Python. ``DATABASE_URL``
switches to PostgreSQL and ``REDIS_URL`` to Redis for Celery, the Channels layer and
the cache. The production variables are listed in ``docs/deployment.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

from .env import (
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    sqlite_database,
    validate_redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# --- This site -------------------------------------------------------------------
SITE_PARTY_ID = env_str("SITE_PARTY_ID", "site-1")
if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", SITE_PARTY_ID):
    raise ImproperlyConfigured(
        "SITE_PARTY_ID must be 1-63 lowercase letters, digits or '-', "
        f"starting with a letter or digit; got {SITE_PARTY_ID!r}"
    )
SITE_NAME = env_str("SITE_NAME", "FedWeb site")

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not env_bool("FEDWEB_EMBEDDED", True):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when FEDWEB_EMBEDDED is false")
    SECRET_KEY = None  # resolved below from the data directory

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "frontend.errors.csrf_failure"  # the site's layout and a way back, not a bare page

# --- Files: datasets, intermediate data and models live here ----------------------
# Reading the settings creates none of these: `migrate` and the site's processes make them
# (fedweb/sitedata.py), so a command run where there is no site leaves nothing behind.
DATA_DIR = Path(env_str("FEDWEB_DATA_DIR", str(BASE_DIR / "var"))).resolve()
ARTIFACT_DIR = DATA_DIR / "artifacts"
UPLOAD_TMP_DIR = DATA_DIR / "tmp"

SECRET_KEY_FILE = None
if SECRET_KEY is None:
    # Embedded mode: a per-site random key kept beside the data, never a constant. A site
    # not created yet has none: this process's new key is saved when it creates the site's
    # files, or replaced by the one another of the site's processes saved first.
    SECRET_KEY_FILE = DATA_DIR / "secret_key"
    SECRET_KEY = (
        SECRET_KEY_FILE.read_text(encoding="utf-8").strip() if SECRET_KEY_FILE.exists() else get_random_secret_key()
    )

# --- Between sites -----------------------------------------------------------------
# What one partner may make this site hold: messages waiting in one job session's
# mailbox, and invitations waiting for our admin's answer.
MAILBOX_SESSION_BYTES = env_int("FEDWEB_MAILBOX_SESSION_MB", 4096, minimum=1) * 1024 * 1024
MAX_WAITING_INVITATIONS = env_int("FEDWEB_MAX_WAITING_INVITATIONS", 20, minimum=1)

# --- Jobs ----------------------------------------------------------------------------
JOBS_QUEUE = "jobs"
# How many of this site's tasks may be queued or running at once (the rest wait).
JOBS_MAX_TASKS = env_int("FEDWEB_JOBS_MAX_TASKS", 4, minimum=1)
# How long a task waits for one message from the partner before it fails.
JOBS_RECV_TIMEOUT = env_int("FEDWEB_JOBS_RECV_TIMEOUT", 600, minimum=1)
# A running task without a heartbeat this long lost its worker.
JOBS_HEARTBEAT_TIMEOUT = env_int("FEDWEB_JOBS_HEARTBEAT_TIMEOUT", 120, minimum=15)
# A partner that does not answer a job's message is retried this long before the task fails.
PARTNER_RETRY_SECONDS = env_int("FEDWEB_PARTNER_RETRY_SECONDS", 120, minimum=1)
# A job whose worker was lost resumes by itself this many times.
JOBS_AUTO_RESUMES = env_int("FEDWEB_JOBS_AUTO_RESUMES", 2, minimum=0)
# A job the partner has not accepted after this long fails ("did not answer since ...").
JOBS_ACCEPT_TIMEOUT = env_int("FEDWEB_JOBS_ACCEPT_TIMEOUT", 3600, minimum=10)

# --- Online scoring --------------------------------------------------------------
# The label holder's answer arrives within this many milliseconds, or the request fails
# with "the partner did not answer in time" (never a hang).
SCORING_DEADLINE_MS = env_int("FEDWEB_SCORING_DEADLINE_MS", 2000, minimum=50)
# Ids in one scoring request, and requests per second one API token may make.
SCORING_MAX_IDS = env_int("FEDWEB_SCORING_MAX_IDS", 1000, minimum=1)
SCORING_RATE_PER_TOKEN = env_int("FEDWEB_SCORING_RATE_PER_TOKEN", 100, minimum=1)

# A page watching a job or dataset re-reads it this often (seconds), for the updates that
# other processes could not push to it (no shared channel layer without Redis).
FEDWEB_LIVE_POLL_SECONDS = env_int("FEDWEB_LIVE_POLL_SECONDS", 3, minimum=1)

# --- Uploads ---------------------------------------------------------------------
DATASET_MAX_UPLOAD_BYTES = env_int("FEDWEB_MAX_UPLOAD_MB", 2048, minimum=1) * 1024 * 1024
DATASET_MAX_ROWS = env_int("FEDWEB_MAX_ROWS", 50_000_000, minimum=1)
# Django refuses to start while this names a missing folder, and a folder that is not a site
# yet has none: there (where no upload can be stored anyway) it is the system's temporary folder.
FILE_UPLOAD_TEMP_DIR = str(UPLOAD_TMP_DIR) if UPLOAD_TMP_DIR.is_dir() else None
FILE_UPLOAD_HANDLERS = ["datasets.uploads.CappedUploadHandler"]
FILE_UPLOAD_PERMISSIONS = 0o640

# --- Applications ----------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "fedweb.accounts",
    "fedweb.audit",
    "fedweb.api",
    "fedweb.proxy",
    "fedweb.i18n",
    "datasets",
    "projects",
    "jobs",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a signed-in user's own choice overrides what LocaleMiddleware read.
    "fedweb.accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fedweb.urls"
WSGI_APPLICATION = "fedweb.wsgi.application"
ASGI_APPLICATION = "fedweb.asgi.application"
AUTH_USER_MODEL = "accounts.User"
# Every password check (our sign-in form, Django's admin, any authenticate() call)
# goes through the throttled, audited backend.
AUTHENTICATION_BACKENDS = ["fedweb.accounts.backends.ThrottledModelBackend"]
# Django's own admin site is off unless asked for; its sign-in page is then ours.
DJANGO_ADMIN_ENABLED = env_bool("FEDWEB_DJANGO_ADMIN", False)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context.site",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
DATABASES = {
    "default": parse_database_url(_database_url) if _database_url else sqlite_database(DATA_DIR / "fedweb.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, channel layer, cache ------------------------------------
REDIS_URL = validate_redis_url(env_str("REDIS_URL"))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Sites sharing one Redis keep their queues apart (and so do test runs).
    if env_str("FEDWEB_BROKER_PREFIX"):
        CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": env_str("FEDWEB_BROKER_PREFIX") + ":"}
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # The file-system broker lets a separate worker process run tasks with no server.
    _broker = DATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # The database cache is shared by the web and worker processes (login throttling
    # must see every process's failures).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "fedweb_cache"}}

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # the database is the truth about task outcomes
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- Security ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_FAILURE_LIMIT = env_int("FEDWEB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env_int("FEDWEB_LOGIN_FAILURE_LIMIT_PER_ADDRESS", 20, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("FEDWEB_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
API_TOKEN_DEFAULT_DAYS = env_int("FEDWEB_API_TOKEN_DAYS", 90, minimum=1)
# How many reverse proxies in front of the site append to X-Forwarded-For (0 = none
# trusted, REMOTE_ADDR is the client).
TRUSTED_PROXY_COUNT = env_int("FEDWEB_TRUSTED_PROXY_COUNT", 0, minimum=0)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("FEDWEB_SESSION_SECONDS", 8 * 3600, minimum=60)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
_https = env_bool("FEDWEB_HTTPS", False)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_SSL_REDIRECT = _https and env_bool("FEDWEB_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("FEDWEB_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
if _https:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Internationalisation --------------------------------------------------------
LANGUAGE_CODE = env_str("FEDWEB_LANGUAGE", "en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates as Chinese users read them in business software (2026-12-03 08:15), not 2026年12月3日.
FORMAT_MODULE_PATH = ["fedweb.formats"]
# The cookie keeps the choice for the sign-in page and for browsers nobody is signed in on.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = _https
TIME_ZONE = env_str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (vendored, served by the site itself: sites are often offline) ---
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- REST API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fedweb.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "fedweb.api.schema.FedWebAutoSchema",
    "EXCEPTION_HANDLER": "fedweb.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FedWeb site API",
    "DESCRIPTION": (
        "The API of one FedWeb site. Authenticate with a session (browser) or with "
        "`Authorization: Bearer <token>` using a token created on the API tokens page. "
        "Every error has the same shape: {\"error\": {\"code\", \"message\", \"details\"}}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("FEDWEB_LOG_LEVEL", "INFO")},
    # kombu warns that the file-system broker URL has no host name; it needs none.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}},
}
