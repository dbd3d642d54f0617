"""Settings for ShareStack Push, read from the environment.

With no environment set the service runs on SQLite and kombu's filesystem broker, so
`make run` works on a bare machine. Production sets DATABASE_URL, CELERY_BROKER_URL,
REDIS_URL and SECRET_KEY.
"""
import os
import secrets
from pathlib import Path

import dj_database_url
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHARESTACK_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]




def local_secret_key() -> str:
    """Return this checkout's random key from var/, creating it on first use."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Production sets SECRET_KEY; a bare checkout makes its own key under var/.
SECRET_KEY = env_str("SECRET_KEY") or local_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "sharestack_push.notifications",
    "channels_app",
    "preferences",
    "templates",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files (admin, API docs) under gunicorn without a proxy.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "sharestack_push.admin_guard.RejectNulInAdminQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sharestack_push.urls"
WSGI_APPLICATION = "sharestack_push.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in var/ unless DATABASE_URL names another one.
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file: WAL and IMMEDIATE transactions make
    # writers wait for each other instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel separately from the SQL instead of being quoted into it in
    # Python, which took most of the CPU of the pipeline's bulk record writes.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# API callers get English unless they send Accept-Language; pages follow the browser.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Plotly's JavaScript bundle for the admin dashboard, from the plotly package.
    "analytics.staticfiles.PlotlyFinder",
]
# Without collectstatic (make run), whitenoise finds files in the apps themselves.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Celery: kombu's filesystem transport, with atomic writes (sharestack_push/broker.py),
# needs no server; any kombu URL replaces it.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem-atomic://")
BROKER_FOLDER = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith(("filesystem://", "filesystem-atomic://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    for folder in ("queue", "processed", "control"):
        (BROKER_FOLDER / folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

CHANNEL_KINDS = ("email", "app", "sms", "wechat")
CELERY_TASK_QUEUES = [
    Queue("dispatch"),
    *(Queue(f"send.{kind}") for kind in CHANNEL_KINDS),
    Queue("tracking"),
    Queue("maintenance"),
]
CELERY_TASK_DEFAULT_QUEUE = "dispatch"
CELERY_TASK_ROUTES = {
    "notifications.dispatch_task": {"queue": "dispatch"},
    "notifications.process_chunk": {"queue": "dispatch"},
    "notifications.release_due_work": {"queue": "maintenance"},
    "notifications.finish_tasks": {"queue": "maintenance"},
    "analytics.evaluate_alerts": {"queue": "maintenance"},
}
# Celery's Django fixup closes the database connection around every task unless this
# allows reuse. A new PostgreSQL connection per task cost about 10 ms of server CPU.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 100)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
PUSH_BEAT_INTERVAL_SECONDS = env_float("PUSH_BEAT_INTERVAL_SECONDS", 5.0)
CELERY_BEAT_SCHEDULE = {
    "release-due-work": {
        "task": "notifications.release_due_work",
        "schedule": PUSH_BEAT_INTERVAL_SECONDS,
    },
    "finish-tasks": {
        "task": "notifications.finish_tasks",
        "schedule": max(PUSH_BEAT_INTERVAL_SECONDS * 2, 10.0),
    },
    "evaluate-alerts": {
        "task": "analytics.evaluate_alerts",
        "schedule": env_float("PUSH_ALERT_INTERVAL_SECONDS", 60.0),
    },
}

# The delivery pipeline.
PUSH_CHUNK_SIZE = env_int("PUSH_CHUNK_SIZE", 1000)
PUSH_SEND_BATCH_SIZE = env_int("PUSH_SEND_BATCH_SIZE", 500)
# Records claimed at once within a send job: at most this many can be delivered twice
# when a worker process dies in the middle of a send.
PUSH_CLAIM_BATCH_SIZE = env_int("PUSH_CLAIM_BATCH_SIZE", 100)
PUSH_SEND_CONCURRENCY = env_int("PUSH_SEND_CONCURRENCY", 64)
PUSH_MAX_ATTEMPTS = env_int("PUSH_MAX_ATTEMPTS", 5)
PUSH_RETRY_BASE_SECONDS = env_float("PUSH_RETRY_BASE_SECONDS", 30.0)
PUSH_RETRY_MAX_SECONDS = env_float("PUSH_RETRY_MAX_SECONDS", 3600.0)
PUSH_RELEASE_BATCH_SIZE = env_int("PUSH_RELEASE_BATCH_SIZE", 2000)
PUSH_PROVIDER_TIMEOUT_SECONDS = env_float("PUSH_PROVIDER_TIMEOUT_SECONDS", 10.0)
# The wait when a provider delays an address without giving a retry time.
PUSH_PROVIDER_DEFER_SECONDS = env_float("PUSH_PROVIDER_DEFER_SECONDS", 3600.0)
# The preference page posts one checkbox per notification type and channel kind.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000
# How long a send job waits for a channel's rate limit before handing messages back
# to the scheduler.
PUSH_RATE_LIMIT_MAX_WAIT_SECONDS = env_float("PUSH_RATE_LIMIT_MAX_WAIT_SECONDS", 5.0)
# The address providers reach this service at, behind any reverse proxy. Callback URLs
# given to providers, and checked in their signatures, start with it.
PUSH_PUBLIC_BASE_URL = env_str("PUSH_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For header is trusted
# for the client address of open and click events. Empty: REMOTE_ADDR is the client.
PUSH_TRUSTED_PROXIES = env_list("PUSH_TRUSTED_PROXIES")
# Networks (CIDR) whose opens and clicks are machine traffic, such as the egress ranges
# that Apple publishes for iCloud Private Relay, which Mail Privacy Protection uses.
PUSH_MACHINE_NETWORKS = env_list("PUSH_MACHINE_NETWORKS")
PUSH_DEFAULT_TIMEZONE = env_str("PUSH_DEFAULT_TIMEZONE", "Asia/Shanghai")
PUSH_DEFAULT_LOCALE = env_str("PUSH_DEFAULT_LOCALE", "zh-hans")
# Fernet key for channel credentials at rest; derived from SECRET_KEY when unset.
CREDENTIALS_KEY = env_str("CREDENTIALS_KEY")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sharestack_push.notifications.auth.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "sharestack_push.notifications.auth.HasScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["sharestack_push.notifications.errors.JsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "sharestack_push.notifications.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ShareStack Push API",
    "DESCRIPTION": "Multi-channel notifications: app push, SMS, email and WeChat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>`",
            }
        }
    },
    "SECURITY": [{"ApiKey": []}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sharestack_push.notifications.schema.add_error_responses",
    ],
}

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ShareStack <noreply@sharestack.local>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"redact_query": {"()": "sharestack_push.logfilters.RedactQueryStrings"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "requests": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_query"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's request lines; callback URLs may carry a token.
        "django.server": {"handlers": ["requests"], "propagate": False},
        # httpx logs each request URL at INFO, and an APNs URL contains the device token.
        "httpx": {"level": "WARNING"},
        # The Twilio library logs each request URL at INFO, and the path names the
        # account SID.
        "twilio.http_client": {"level": "WARNING"},
    },
}
