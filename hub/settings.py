"""Baton's settings, read from the environment (see the README's table of variables)."""

import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from hub.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# The SQLite default is the newcomer's laptop, so it runs in DEBUG; with a DATABASE_URL it does not.
DEBUG = envbool("DEBUG", "false" if os.environ.get("DATABASE_URL") else "true")
DEVELOPMENT_SECRET_KEY = "baton-development-only-secret-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # The development key is only for a developer's machine and the test suite.
    if not DEBUG and "pytest" not in sys.modules:
        raise ImproperlyConfigured("Set SECRET_KEY, or DEBUG=true for local development.")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif (
    not DEBUG
    and "pytest" not in sys.modules
    and (
        len(SECRET_KEY) < 50
        or SECRET_KEY in {DEVELOPMENT_SECRET_KEY}
        or SECRET_KEY.startswith("django-insecure-")
    )
):
    raise ImproperlyConfigured(
        "SECRET_KEY is too short or a known default: use 50+ random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# `PORT=8123 make run` serves on that port; the links Baton prints and hands out follow it.
PORT = envint("PORT", 8000)
SITE_URL = os.environ.get("SITE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",  # runserver serves static files the way production does
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tracking",
    "partners",
    "contactcentre",
    "hub",
    "axes",
]

MIDDLEWARE = [
    # Probes and scrapes first: they must answer whatever Host header a load balancer sends.
    "hub.middleware.OperationsEndpointsMiddleware",
    "hub.middleware.RequestObservabilityMiddleware",
    "hub.middleware.RefuseNulInQueryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's styles, the API docs' Swagger UI) from the app itself: no proxy rule.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Last: turns a locked-out login (console or admin) into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer fails a request (and /readyz) in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = envint("DB_CONNECT_TIMEOUT", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and an eager worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "hub.cache.OneTripRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Login rate limiting (django-axes) for the console and the admin: after BATON_LOGIN_FAILURE_LIMIT
# failures for one username from one address, that pair is locked out for BATON_LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("BATON_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("BATON_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = envint("BATON_PROXY_COUNT", 0)
LANGUAGE_CODE = "en-gb"
# The customer pages and messages speak these; LocaleMiddleware picks one from the browser.
LANGUAGES = [("en-gb", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Production serves what `collectstatic` gathered, compressed and with hashed names cached forever;
# development serves the apps' files as they are (hub/storage.py).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
_STATIC_BACKEND = (
    "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG else "hub.storage.StaticFilesStorage"
)
# Uploaded proof of delivery (driver link photos and signatures), through Django's storage API:
# local files by default, any storage backend (S3, GCS, ...) through STORAGES in production.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _STATIC_BACKEND},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if envbool("SECURE_COOKIES", "False"):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Behind a TLS-terminating proxy: HSTS, redirect to HTTPS, and which header says the request was HTTPS.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "False")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "False")
if _proxy_header := envlist("SECURE_PROXY_SSL_HEADER"):  # e.g. HTTP_X_FORWARDED_PROTO,https
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
# Content-Security-Policy (Django's own): scripts only from Baton itself; inline styles are still used.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# JSON lines in production, readable lines on a developer's console; never a secret or contact detail.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "console" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "console"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or console.")
LOGGING = logging_config(fmt=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO").upper())

# --- Operations: probes and metrics ----------------------------------------------------------------
BATON_BUILD_ID = os.environ.get("BATON_BUILD_ID", "")
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = envlist("METRICS_ALLOWED_NETWORKS")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network") from _exc
WORKER_METRICS_PORT = envint("BATON_WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDR = os.environ.get("BATON_WORKER_METRICS_ADDR", "127.0.0.1")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # The API speaks JSON only: form encodings would make "" mean null and diverge from the schema.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "tracking.filters.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hub.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"partner": None},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton API",
    "DESCRIPTION": "Delivery-chain tracking hub: partner ingest, agent timelines, customer tracking.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hub.schema.require_request_bodies",
        "hub.schema.document_query_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "tracking.statuses.Status",
        "ReasonEnum": "tracking.statuses.Reason",
        "EventKindEnum": "tracking.statuses.EventKind",
        "CaseChannelEnum": "contactcentre.models.Case.Channel",
        "CaseStatusEnum": "contactcentre.models.Case.Status",
        "CaseReasonEnum": "contactcentre.models.Case.Reason",
        "CaseResolutionEnum": "contactcentre.models.Case.Resolution",
        "OpenCaseStatusEnum": "contactcentre.serializers.OPEN_STATUS_CHOICES",
        "CustomerChannelEnum": "contactcentre.serializers.CUSTOMER_CHANNELS",
    },
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
if REDIS_URL:
    # Kombu's Redis transport, made to survive a broker restart (see hub/broker.py).
    CELERY_BROKER_TRANSPORT = "hub.broker:Transport"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = envbool("CELERY_TASK_EAGER_PROPAGATES", "False")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "baton")
# Beat's jobs over every open shipment run for seconds (the flag sweep) to minutes (the estimates,
# at 1M open jobs) and would hold workers that ingest needs. Name a queue here and give it a worker
# of its own (`celery -A hub worker -Q <queue> -c 1`); unset, they share the default queue.
CELERY_PERIODIC_QUEUE = os.environ.get("CELERY_PERIODIC_QUEUE", "")
PERIODIC_TASKS = [
    "partners.tasks.sweep_flags",
    "partners.tasks.refresh_estimates",
    "partners.tasks.refresh_stage_durations",
    "partners.tasks.materialise_scorecards",
    "contactcentre.tasks.materialise_contact_figures",
]
if CELERY_PERIODIC_QUEUE:
    CELERY_TASK_ROUTES = {name: {"queue": CELERY_PERIODIC_QUEUE} for name in PERIODIC_TASKS}
# An acknowledged partner update must survive a worker killed mid-task: acknowledge only after
# the task ran, give the message back if the worker dies, and keep the visibility timeout above
# any task run time or retry delay so Redis does not redeliver a task that is still running.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_PREFETCH_MULTIPLIER", 4)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
    # Notice a silently dead connection (a Redis that vanished without closing sockets) within seconds.
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Reconnect to a restarted broker forever (None): a worker must outlive any Redis outage by itself.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Tasks running when the broker connection drops finish (their work is idempotent and committed);
# their acknowledgement is dropped safely by hub.celery.ReconnectSafeRequest, and Redis or the sweep
# gives the message back. Cancelling them instead would only redo the same work.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Publishing while the broker is down: fail fast, the stored message waits for the sweep.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330
CELERY_BEAT_SCHEDULE = {
    "sweep-unprocessed-inbound": {
        "task": "partners.tasks.sweep_unprocessed_messages",
        "schedule": timedelta(seconds=envint("BATON_SWEEP_SECONDS", 60)),
    },
    "sweep-outbox": {
        "task": "tracking.tasks.sweep_outbox",
        "schedule": timedelta(seconds=envint("BATON_OUTBOX_SWEEP_SECONDS", 30)),
    },
    "materialise-scorecards": {
        "task": "partners.tasks.materialise_scorecards",
        "schedule": timedelta(seconds=envint("BATON_SCORECARD_SECONDS", 3600)),
    },
    "materialise-contact-figures": {
        "task": "contactcentre.tasks.materialise_contact_figures",
        "schedule": timedelta(seconds=envint("BATON_SCORECARD_SECONDS", 3600)),
    },
    "sweep-flags": {
        "task": "partners.tasks.sweep_flags",
        "schedule": timedelta(seconds=envint("BATON_FLAG_SWEEP_SECONDS", 60)),
    },
    "refresh-stage-durations": {
        "task": "partners.tasks.refresh_stage_durations",
        "schedule": timedelta(seconds=envint("BATON_ETA_REFRESH_SECONDS", 3600)),
    },
    "refresh-estimates": {
        "task": "partners.tasks.refresh_estimates",
        "schedule": timedelta(seconds=envint("BATON_ESTIMATE_SECONDS", 300)),
    },
    "poll-pull-partners": {
        "task": "partners.tasks.poll_partners",
        "schedule": timedelta(seconds=envint("BATON_POLL_SECONDS", 300)),
    },
}

# --- Baton -------------------------------------------------------------------------------------
BATON = {
    # Outbound messages are retried with backoff until they are this old, then marked failed.
    "OUTBOX_GIVE_UP_SECONDS": envint("BATON_OUTBOX_GIVE_UP_SECONDS", 3 * 24 * 3600),
    # Development and tests only: let webhooks and callbacks reach private and loopback addresses.
    "ALLOW_PRIVATE_URLS": envbool("BATON_ALLOW_PRIVATE_URLS", "False"),
    "MAX_BODY_BYTES": envint("BATON_MAX_BODY_BYTES", 1024 * 1024),
    "MAX_BATCH_EVENTS": envint("BATON_MAX_BATCH_EVENTS", 500),
    # What one shipment can absorb: every status rebuilds its whole timeline under its row lock.
    "MAX_EVENTS_PER_SHIPMENT": envint("BATON_MAX_EVENTS_PER_SHIPMENT", 5000),
    "POSITION_INTERVAL_SECONDS": envint("BATON_POSITION_INTERVAL_SECONDS", 60),
    "UPLOAD_ERRORS_SHOWN": envint("BATON_UPLOAD_ERRORS_SHOWN", 20),
    "TRACKING_TOKEN_DAYS": envint("BATON_TRACKING_TOKEN_DAYS", 60),
    "CASE_SLA_HOURS": envint("BATON_CASE_SLA_HOURS", 24),
    "DRIVER_LINK_MAX_DAYS": envint("BATON_DRIVER_LINK_MAX_DAYS", 7),
    "PROOF_LINK_SECONDS": envint("BATON_PROOF_LINK_SECONDS", 3600),
    "DRIVER_LINK_GRACE_HOURS": envint("BATON_DRIVER_LINK_GRACE_HOURS", 12),
    "DRIVER_LINK_TAPS_PER_MINUTE": envint("BATON_DRIVER_LINK_TAPS_PER_MINUTE", 30),
    "SWEEP_AFTER_SECONDS": envint("BATON_SWEEP_AFTER_SECONDS", 120),
    "MAX_PROCESSING_ATTEMPTS": envint("BATON_MAX_PROCESSING_ATTEMPTS", 10),
    "DELIVERED_MAX_DISTANCE_M": envint("BATON_DELIVERED_MAX_DISTANCE_M", 1000),
    "CLOCK_SKEW_TOLERANCE_SECONDS": envint("BATON_CLOCK_SKEW_TOLERANCE_SECONDS", 300),
    "CONFLICT_WINDOW_SECONDS": envint("BATON_CONFLICT_WINDOW_SECONDS", 900),
    # The sweep's fallback when no SilenceThreshold row applies (operations edit those in the admin).
    "SILENCE_THRESHOLD_SECONDS": envint("BATON_SILENCE_THRESHOLD_SECONDS", 7200),
    # A shipment whose predicted chance of missing its window reaches this (in %) is flagged late_risk.
    "LATE_RISK_FLAG_PERCENT": envint("BATON_LATE_RISK_FLAG_PERCENT", 50),
    # The ETA model (docs/eta.md) learns from deliveries of this many days, in groups of at least
    # this many jobs; a partner's own ETA is shown as a window of this many minutes either side.
    "ETA_HISTORY_DAYS": envint("BATON_ETA_HISTORY_DAYS", 60),
    "ETA_MIN_SAMPLES": envint("BATON_ETA_MIN_SAMPLES", 20),
    "PARTNER_ETA_MARGIN_MINUTES": envint("BATON_PARTNER_ETA_MARGIN_MINUTES", 15),
    "PARTNER_RATE_LIMIT_PER_MINUTE": envint("BATON_PARTNER_RATE_LIMIT_PER_MINUTE", 60000),
    # --- the customer's page, self-service and notifications ---
    # The courier's position is shown (as a distance and a drawn map) only this close and this fresh.
    "LIVE_POSITION_RADIUS_M": envint("BATON_LIVE_POSITION_RADIUS_M", 5000),
    "LIVE_POSITION_MAX_AGE_SECONDS": envint("BATON_LIVE_POSITION_MAX_AGE_SECONDS", 1800),
    # Customer form posts allowed per window, per tracking link and per IP address.
    "CUSTOMER_RATE_LIMIT": envint("BATON_CUSTOMER_RATE_LIMIT", 10),
    "CUSTOMER_RATE_LIMIT_IP": envint("BATON_CUSTOMER_RATE_LIMIT_IP", 30),
    "CUSTOMER_RATE_WINDOW_SECONDS": envint("BATON_CUSTOMER_RATE_WINDOW_SECONDS", 600),
    # Lookup by order reference + postcode: attempts per window per IP, and per order reference.
    "LOOKUP_RATE_LIMIT_IP": envint("BATON_LOOKUP_RATE_LIMIT_IP", 10),
    "LOOKUP_RATE_LIMIT_REFERENCE": envint("BATON_LOOKUP_RATE_LIMIT_REFERENCE", 5),
    # How long the second factor (reference + postcode) unlocks proof of delivery on one browser.
    "PROOF_UNLOCK_SECONDS": envint("BATON_PROOF_UNLOCK_SECONDS", 1800),
    # Reschedule: when the merchant gave no options, offer morning/afternoon on this many days.
    "RESCHEDULE_DAYS": envint("BATON_RESCHEDULE_DAYS", 5),
    # Notifications: at least this long between two messages to one subscriber, and quiet hours
    # (local time of the subscriber) during which messages wait until the end of the quiet period.
    "NOTIFY_MIN_GAP_SECONDS": envint("BATON_NOTIFY_MIN_GAP_SECONDS", 600),
    "QUIET_HOURS_START": envint("BATON_QUIET_HOURS_START", 21),
    "QUIET_HOURS_END": envint("BATON_QUIET_HOURS_END", 8),
    "WORKER_BATCH_MESSAGES": envint("BATON_WORKER_BATCH_MESSAGES", 200),
    # With a broker, `manage.py relay` publishes new messages in batches (nothing but the insert on
    # the request path); off, each request publishes its own message once committed.
    "RELAY": envbool("BATON_RELAY", "True"),
    "RELAY_POLL_MS": envint("BATON_RELAY_POLL_MS", 50),
    "RELAY_WINDOW_SECONDS": envint("BATON_RELAY_WINDOW_SECONDS", 5),
    # While the workers have a full batch waiting, new messages gather this long into fuller batches.
    "RELAY_HOLD_MS": envint("BATON_RELAY_HOLD_MS", 500),
    "CUSTODY_CACHE_SECONDS": envint("BATON_CUSTODY_CACHE_SECONDS", 300),
    "EPCIS_MAX_RANGE_DAYS": envint("BATON_EPCIS_MAX_RANGE_DAYS", 31),
}

# The help contact shown on the customer's tracking page (and usable in message templates).
HELP_EMAIL = os.environ.get("BATON_HELP_EMAIL", "")
HELP_PHONE = os.environ.get("BATON_HELP_PHONE", "")

# EPCIS identifiers (shipments, parties, orders) are URIs under this base; keep it stable.
EPCIS_NAMESPACE = os.environ.get("BATON_EPCIS_NAMESPACE", f"{SITE_URL}/id")

# Where Baton tells operations about things that need a person (a webhook endpoint disabled, ...).
OPERATIONS_EMAIL = os.environ.get("BATON_OPERATIONS_EMAIL", "operations@localhost")

# --- Outbound e-mail and SMS ----------------------------------------------------------------------
# Any Django e-mail backend: SMTP (EMAIL_HOST, ...), or a provider's through django-anymail.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "False")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Baton <tracking@localhost>")
SMS_BACKEND = os.environ.get("SMS_BACKEND", "tracking.transports.ConsoleSmsProvider")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = os.environ.get("TWILIO_FROM", "")
