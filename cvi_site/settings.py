"""OpenCVI settings: everything comes from the environment, with embedded defaults.

Variables may also be written in ``.env`` at the project root (see below).
Embedded default (nothing set): SQLite, the in-memory channel layer, Celery on kombu's
filesystem transport, data under ./data. ``REDIS_URL`` switches the channel layer and Celery to
Redis; ``DATABASE_URL`` switches the database (PostgreSQL in production).
"""
from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ

from cvi_site.env import ConfigError, env_bool, env_int, env_int_list, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
# KEY=value lines in ./.env (or the file OPENCVI_ENV_FILE names; empty: none) are read by every
# entry point (make run, manage.py commands, the worker), so the CLI sees the same data dir,
# database and keys as the running site. The process environment wins over the file.
_ENV_FILE = env_str("OPENCVI_ENV_FILE", str(BASE_DIR / ".env"))
if _ENV_FILE and Path(_ENV_FILE).is_file():
    environ.Env.read_env(_ENV_FILE, overwrite=False)

DATA_DIR = Path(env_str("OPENCVI_DATA_DIR") or BASE_DIR / "data").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Assembled model files (~650 MB); several data dirs (test sites, benchmarks) may share one.
MODELS_DIR = Path(env_str("OPENCVI_MODELS_DIR") or DATA_DIR / "models").resolve()


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or one generated once and kept in the data dir (embedded default)."""
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ConfigError("DJANGO_SECRET_KEY", "must be at least 32 characters")
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
# The production switch: behind a TLS-terminating proxy (X-Forwarded-Proto), secure cookies, HSTS and
# a redirect to https; the site's host names must then be listed (README, "Deployment").
HTTPS = env_bool("DJANGO_HTTPS", False)
# Public base URL used to build conversation_url; empty: taken from the host of the API request.
PUBLIC_URL = env_url("PUBLIC_URL", schemes=("http", "https")).rstrip("/")
#: the names this machine answers to itself; the default ALLOWED_HOSTS (with PUBLIC_URL's host)
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS") or (
    [] if HTTPS else LOOPBACK_HOSTS + ([urlsplit(PUBLIC_URL).hostname] if PUBLIC_URL else []))
if HTTPS and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ConfigError("DJANGO_ALLOWED_HOSTS", "must list this site's host names (not *) when DJANGO_HTTPS is on")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [f"https://{h}" for h in ALLOWED_HOSTS] if HTTPS else [])
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the proxy's health checks may come over plain http
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
INSTALLED_APPS = [
    "daphne",  # first: its runserver serves ASGI (HTTP + WebSockets)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Redoc and Swagger UI as static files of this site
    "channels",
    "cvi_site",
    "pals",
    "faces",
    "conversations",
    "knowledge",
    "pronunciations",
    "objectives",
    "guardrails",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cvi_site.middleware.BodySizeLimitMiddleware",
    # Static files (admin, PAL Maker, the conversation page's JS) straight from Daphne.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cvi_site.urls"
ASGI_APPLICATION = "cvi_site.asgi.application"
WSGI_APPLICATION = None

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

# ---------------------------------------------------------------------------- database
DATABASE_URL = env_url(
    "DATABASE_URL", schemes=("postgres", "postgresql", "pgsql", "sqlite")
)
if DATABASE_URL:
    try:
        _db = environ.Env.db_url_config(DATABASE_URL)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ConfigError("DATABASE_URL", f"malformed URL ({exc})") from None
    if _db["ENGINE"].endswith("postgresql") and not _db.get("NAME"):
        raise ConfigError("DATABASE_URL", "no database name in the URL")
    _db.setdefault("CONN_MAX_AGE", 0)
    _db.setdefault("TEST", {})
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "opencvi.sqlite3",
            # Several processes (web, worker) and threads (live sessions) write. Take the write
            # lock when a transaction begins (IMMEDIATE), so a writer waits up to `timeout` for
            # another; a deferred transaction that reads and then writes fails at once with
            # "database is locked" when another connection wrote in between.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "cvi_site.Account"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
# `make setup` runs collectstatic; finders keep a fresh checkout working before that.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MAX_AGE = 300
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"

# Request size limits (a clear 413 above them, see cvi_site.middleware).
MAX_JSON_BODY_BYTES = env_int("MAX_JSON_BODY_BYTES", 1_000_000, minimum=1024)
# Deepest nesting of arrays and objects a JSON body may have (tool schemas need ~10): a 400 beyond.
MAX_JSON_DEPTH = env_int("MAX_JSON_DEPTH", 64, minimum=8)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_JSON_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# ---------------------------------------------------------------------------- redis / channels / celery
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 defaults socket_timeout to 5 s, which aborts the layer's blocking pops
            # (channels_redis#422): let reads block, keep a connect timeout.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 5}],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # A broker that needs no server: kombu's filesystem transport, shared by the web
    # process and the worker started beside it.
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"  # kombu warns when no host is named
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (control) messages: kombu would otherwise create ./control in the CWD.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"db+sqlite:///{DATA_DIR / 'celery-results.sqlite3'}"

# JSON only: no message on the broker can carry code (cvi_site/celery.py says why that matters).
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 1, minimum=1)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_RESULT_EXTENDED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Housekeeping, run by the beat scheduler embedded in the worker that `make run` starts.
CELERY_BEAT_SCHEDULE = {
    "conversations-stale": {"task": "conversations.conversation_fail_stale", "schedule": 15.0},
    "faces-stale": {"task": "faces.face_fail_stale", "schedule": 300.0},
    "documents-stale": {"task": "knowledge.document_fail_stale", "schedule": 300.0},
    # Webhook retries whose timed task was lost (a worker restarted while it waited).
    "webhooks-overdue": {"task": "cvi_site.webhook_retry_overdue", "schedule": 60.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# ---------------------------------------------------------------------------- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cvi_site.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "cvi_site.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "cvi_site.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenCVI API",
    "DESCRIPTION": (
        "Self-hosted Conversational Video Interface. Compatible with the hosted CVI REST API v2: "
        "authenticate with the `x-api-key` header."
    ),
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PatienceEnum": "conversations.realtime.layerspec.LEVELS",
        "SensitivityEnum": "conversations.realtime.layerspec.SENSITIVITIES",
        "OwnerTypeEnum": ["system", "user"],
        "FaceStatusEnum": "faces.models.Face.Status",
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "ObjectiveGuardrailModalityEnum": "guardrails.models.Guardrail.Modality",
        "SetStatusEnum": ["active"],
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # the docs pages load their scripts from this site, not a CDN: they work offline
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cvi_site.schema.add_error_responses",
        "cvi_site.schema.add_request_constraints",
    ],
}

# Per-account limit of live conversations (an account may override it).
MAX_CONCURRENT_CONVERSATIONS = env_int("MAX_CONCURRENT_CONVERSATIONS", 4, minimum=1)
# ---------------------------------------------------------------------------- the box's LLM service
# One llama.cpp server per box, shared by every call and web process (cvi_site/llmservice.py).
# LLM_URL: an OpenAI-compatible base URL (…/v1) serving the embedded model: a server on its own box
# or vLLM on a GPU. Empty: `manage.py serve` starts llama-server on LLM_SERVICE_PORT and points the
# web processes at it; a process with no LLM_URL at all runs the model in-process (tests, scripts).
LLM_URL = env_url("LLM_URL", schemes=("http", "https")).rstrip("/")
LLM_SERVICE_PORT = env_int("LLM_SERVICE_PORT", 8089, minimum=1)
# Parallel sequences (a cached slot per live call); default: the calls one web process holds.
LLM_SLOTS = env_int("LLM_SLOTS", 0, minimum=0)
# Engine threads (llama.cpp generation, Whisper) are chosen from the machine's usable cores and the
# calls it is sized for (conversations/realtime/engines/threads.py); 0 = that plan, N overrides it.
LLM_THREADS = env_int("LLM_THREADS", 0, minimum=0)
STT_THREADS = env_int("STT_THREADS", 0, minimum=0)
# The embedded model the LLM service serves (a PAL naming another embedded model loads it in the
# web process); the default is the registry's, chosen by measurement (README).
LLM_MODEL = env_str("LLM_MODEL") or ""
# Whisper's beam: 5 heard eSpeak speech with ~20 % fewer word errors than greedy decoding for
# ~50 ms more per turn with tiny.en (manage.py bench_stt; README).
STT_BEAM_SIZE = env_int("STT_BEAM_SIZE", 5, minimum=1)
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 4096, minimum=512)

# Live calls one server process holds (admission control: the next join is refused with
# "server_at_capacity"). The default is what `bench_u2u --concurrency N` measured on 2 cores with
# face video (README, "Scaling out"): two calls are all answered, four saturate the box.
MAX_LIVE_CALLS_PER_PROCESS = env_int("MAX_LIVE_CALLS_PER_PROCESS", 2, minimum=1)
LLM_SLOTS = LLM_SLOTS or MAX_LIVE_CALLS_PER_PROCESS
# Python's GIL switch interval in the web process (µs; CPython's default is 5000): see cvi_site/asgi.py.
GIL_SWITCH_INTERVAL_US = env_int("GIL_SWITCH_INTERVAL_US", 500, minimum=50)
# Webhooks are signed with this key (HMAC-SHA256); defaults to the secret key.
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET") or SECRET_KEY
# Seconds to wait before each retry of a webhook that failed (network error, timeout, 5xx, 408, 429):
# 9 tries over about an hour by default. Every try is recorded and shown on the conversation's page.
WEBHOOK_RETRY_DELAYS = env_int_list("WEBHOOK_RETRY_DELAYS", [10, 30, 60, 120, 300, 600, 900, 1500], minimum=0)

# Face training: require the consent statement ("I, <face_name>, am currently speaking and give
# consent ...") in the first seconds of a training video.
FACE_CONSENT_REQUIRED = env_bool("FACE_CONSENT_REQUIRED", False)
# Remote engines, face downloads and webhooks go where accounts say. A server shared by several
# accounts can refuse loopback/private/link-local addresses (redirects included).
ALLOW_PRIVATE_URLS = env_bool("ALLOW_PRIVATE_URLS", True)

# ICE for WebRTC: none by default (no external traffic); comma-separated stun:/turn: URLs.
ICE_SERVERS = env_list("ICE_SERVERS", [])
TURN_USERNAME = env_str("TURN_USERNAME")
TURN_PASSWORD = env_str("TURN_PASSWORD")

# ---------------------------------------------------------------------------- logging
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ConfigError("LOG_LEVEL", f"unknown level {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "cvi_site.logging.ContextFilter"}},
    "formatters": {"line": {"()": "cvi_site.logging.LineFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "asyncio": {"level": "WARNING"},
        # one INFO line per request would bury the site's own (e.g. the LLM service's health polls)
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
