"""Django settings for exsync: every value comes from the environment, with safe defaults.

See the configuration table in README.md.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path

from . import config

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ
TESTING = "pytest" in sys.modules or ENV.get("EXSYNC_TESTING") == "1"

DEBUG = config.env_bool(ENV, "DEBUG", False)
# Production is DEBUG off outside the test suite: there, HTTPS-only settings default to on.
PRODUCTION = not (DEBUG or TESTING)
SECRET_KEY = config.secret_key(ENV, debug=DEBUG or TESTING)
ALLOWED_HOSTS = config.env_list(ENV, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list(ENV, "CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",  # OpClass in migrations (trigram indexes); no-op on SQLite
    "django_filters",
    "axes",
    "exsync",
    "devices",
    "migrations_plan",
    "helpdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless a view opts out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "exsync.middleware.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "exsync.urls"
WSGI_APPLICATION = "exsync.wsgi.application"

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
                "exsync.context_processors.roles",
            ],
        },
    },
]

DATABASES = {"default": config.database_config(ENV, base_dir=BASE_DIR)}
if (
    DATABASES["default"]["ENGINE"].endswith("sqlite3")
    and DATABASES["default"]["NAME"] != ":memory:"
):
    # The embedded default keeps its SQLite file under var/, which a fresh clone does not have.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# django-axes first: it refuses a locked-out user name before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins: LOGIN_FAILURE_LIMIT failures of one user name from one address lock that pair
# for LOGIN_LOCKOUT_MINUTES. Keyed by both, so one guesser neither locks the whole office behind
# a NAT nor locks a user out everywhere. Admins unlock in /admin/ (Axes) or `manage.py axes_reset`.
AXES_FAILURE_LIMIT = config.env_int(ENV, "LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=config.env_int(ENV, "LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "exsync.views.login_locked_out"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = ENV.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(ENV.get("MEDIA_ROOT", "") or BASE_DIR / "var" / "media")

# E-mail: kept in the database outbox (shown in the UI) unless EMAIL_URL names an SMTP server.
_email = config.email_config(ENV)
EMAIL_BACKEND = _email.pop("EMAIL_BACKEND")
for _key, _value in _email.items():
    globals()[_key] = _value
DEFAULT_FROM_EMAIL = ENV.get("DEFAULT_FROM_EMAIL", "exsync <exsync@localhost>")
# An SMTP server that stops answering must not hold a worker for ever.
EMAIL_TIMEOUT = config.env_int(ENV, "EMAIL_TIMEOUT", 30, minimum=1)

# Notices to people and batch reports (migrations_plan/notices, README "Notices").
NOTICE_FROM_EMAIL = ENV.get("NOTICE_FROM_EMAIL", "").strip() or DEFAULT_FROM_EMAIL
NOTICE_REPLY_TO = config.env_list(ENV, "NOTICE_REPLY_TO", [])
NOTICE_HELPDESK_CONTACT = ENV.get(
    "NOTICE_HELPDESK_CONTACT", "Reply to this message or call your IT helpdesk."
).strip()
NOTICE_MESSAGE_ID_DOMAIN = ENV.get("NOTICE_MESSAGE_ID_DOMAIN", "").strip()
# Messages per minute per worker (Celery's rate_limit); 0 = as fast as the server takes them.
NOTICE_RATE_PER_MINUTE = config.env_int(ENV, "NOTICE_RATE_PER_MINUTE", 0)
NOTICE_MAX_ATTEMPTS = config.env_int(ENV, "NOTICE_MAX_ATTEMPTS", 8, minimum=1)
# Backoff after a temporary SMTP failure: base, 2x, 4x ... up to the maximum.
NOTICE_RETRY_SECONDS = config.env_int(ENV, "NOTICE_RETRY_SECONDS", 60, minimum=1)
NOTICE_RETRY_MAX_SECONDS = config.env_int(ENV, "NOTICE_RETRY_MAX_SECONDS", 3600, minimum=1)
# A retry sooner than this goes back to the broker with a countdown; a later one waits for
# beat (a far-future ETA would sit unacknowledged past Redis' visibility timeout).
NOTICE_COUNTDOWN_MAX_SECONDS = 300
# A claim not confirmed within this is a worker that died: the sweeper sends it again.
NOTICE_CLAIM_TIMEOUT_SECONDS = config.env_int(ENV, "NOTICE_CLAIM_TIMEOUT_SECONDS", 600, minimum=1)
# An id handed to the broker and not claimed within this was lost: handed out again.
NOTICE_REQUEUE_SECONDS = config.env_int(ENV, "NOTICE_REQUEUE_SECONDS", 300, minimum=1)
NOTICE_DISPATCH_SECONDS = config.env_int(ENV, "NOTICE_DISPATCH_SECONDS", 30, minimum=1)
# An import that gave no sign of life for this long was killed (its worker, or the
# import_inventory process): beat's sweep sends an upload again and fails a command's file.
# A running import refreshes its heartbeat every 10,000 rows it checks, and holds its rows
# locked while it writes; keep this well above the time 10,000 rows take (about a second).
IMPORT_STALE_SECONDS = config.env_int(ENV, "IMPORT_STALE_SECONDS", 120, minimum=1)
# Device imports (devices/writers.py): a full export that would mark more than this share
# (0..1) of the partnerships it covers (those of mailboxes on the servers in its rows) stale
# is refused until confirmed (the import page's button, import_inventory --confirm-stale).
try:
    STALE_CONFIRM_SHARE = float(ENV.get("STALE_CONFIRM_SHARE", "").strip() or 0.2)
except ValueError:
    raise config.ConfigError("STALE_CONFIRM_SHARE: expected a share such as 0.2") from None
if not 0 <= STALE_CONFIRM_SHARE <= 1:
    raise config.ConfigError("STALE_CONFIRM_SHARE: expected a share from 0 to 1, such as 0.2")
# After the move: how long each device import keeps what it saw of a moved mailbox's phones.
CONTINUITY_WATCH_DAYS = config.env_int(ENV, "CONTINUITY_WATCH_DAYS", 14, minimum=1)
# Partnership hygiene: a partnership with no successful sync for this many days is stale
# (helpdesk/hygiene.py; the list's own filter overrides it per view).
HYGIENE_STALE_DAYS = config.env_int(ENV, "HYGIENE_STALE_DAYS", 30, minimum=1)
# Readiness checks (issue 15): a certificate expiring within this many days is a warning.
READINESS_EXPIRY_WARNING_DAYS = config.env_int(ENV, "READINESS_EXPIRY_WARNING_DAYS", 30, minimum=0)
# Endpoint certificate probes (manage.py probe_endpoints, the Endpoints page): how long one TLS
# connection (connect and handshake) may take before it counts as timed out, and an extra CA
# bundle (PEM file) trusted besides the system store, for an internal CA; empty: none.
PROBE_TIMEOUT_SECONDS = config.env_int(ENV, "PROBE_TIMEOUT_SECONDS", 5, minimum=1)
PROBE_CA_FILE = ENV.get("PROBE_CA_FILE", "").strip()
# Where exsync is reached, for links in reports (e.g. https://exsync.example.org); empty: none.
SITE_URL = ENV.get("SITE_URL", "").strip()

# Celery: Redis when REDIS_URL is set, else an embedded filesystem broker.
# The test suite keeps its messages in a folder of its own, never in the demo's queue.
_celery = config.celery_config(ENV, base_dir=BASE_DIR / "var" / "test" if TESTING else BASE_DIR)
# The cache is shared by web and worker (a plan's progress): Redis when configured, else a
# folder; the tests keep theirs in memory.
if TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif ENV.get("REDIS_URL", "").strip():
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ENV["REDIS_URL"].strip(),
            "KEY_PREFIX": "exsync",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(BASE_DIR / "var" / "cache"),
        }
    }
CELERY_BROKER_URL = _celery["broker_url"]
CELERY_BROKER_TRANSPORT = _celery["broker_transport"]
CELERY_RESULT_BACKEND = _celery["result_backend"]
CELERY_BROKER_TRANSPORT_OPTIONS = _celery["broker_transport_options"]
CELERY_BROKER_FOLDER = _celery.get("broker_folder")
CELERY_TASK_ALWAYS_EAGER = config.env_bool(ENV, "CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "exsync.tasks.heartbeat", "schedule": 60.0},
    "sweep-queued-imports": {
        "task": "devices.tasks.sweep_queued_imports",
        "schedule": float(min(300, max(10, IMPORT_STALE_SECONDS // 2))),
    },
    "sweep-batch-plans": {"task": "migrations_plan.tasks.sweep_batch_plans", "schedule": 300.0},
    "continuity-check": {"task": "migrations_plan.tasks.continuity_check", "schedule": 900.0},
    "notices-dispatch": {
        "task": "migrations_plan.tasks.notices_dispatch",
        "schedule": float(NOTICE_DISPATCH_SECONDS),
    },
}
# Celery's Django fixup closes the database connection around every task unless told to
# reuse it: a new PostgreSQL connection per notice halved the send rate. Connections are still
# recycled after CONN_MAX_AGE and checked (exsync/celery.py: once a second per thread, and
# after an error).
CELERY_DB_REUSE_MAX = config.env_int(ENV, "CELERY_DB_REUSE_MAX", 1000, minimum=0)
# Notices may go to a queue of their own (NOTICE_QUEUE), served by a worker made for many
# short sends that mostly wait on SMTP and PostgreSQL: `celery -A exsync worker -Q notices
# --pool=threads --concurrency=16` (docker-compose.yml's notices-worker; bench-notify measures
# it). Empty (the default, and the embedded setup): the default queue and worker.
NOTICE_QUEUE = ENV.get("NOTICE_QUEUE", "").strip()
CELERY_TASK_ROUTES = (
    {"migrations_plan.tasks.notice_send": {"queue": NOTICE_QUEUE}} if NOTICE_QUEUE else {}
)
# The per-minute send rate is kept by the notice dispatch, not by Celery's rate limits.
CELERY_WORKER_DISABLE_RATE_LIMITS = True
# Short tasks (a notice is one SMTP send): a few messages per process in hand keep it busy.
CELERY_WORKER_PREFETCH_MULTIPLIER = config.env_int(ENV, "CELERY_PREFETCH_MULTIPLIER", 4, minimum=1)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS behind a TLS proxy, each from the environment (README "Configuration"): on by default in
# production, off for `make run` and the tests, which serve plain HTTP.
_tls = config.tls_config(ENV, production=PRODUCTION)
SECURE_SSL_REDIRECT = _tls["SECURE_SSL_REDIRECT"]
SECURE_HSTS_SECONDS = _tls["SECURE_HSTS_SECONDS"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = _tls["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
SECURE_HSTS_PRELOAD = _tls["SECURE_HSTS_PRELOAD"]
SESSION_COOKIE_SECURE = _tls["SESSION_COOKIE_SECURE"]
CSRF_COOKIE_SECURE = _tls["CSRF_COOKIE_SECURE"]
# Only when set: trusting X-Forwarded-Proto without a proxy that overwrites it lets any client
# claim HTTPS.
SECURE_PROXY_SSL_HEADER = _tls["SECURE_PROXY_SSL_HEADER"]
# How many proxies append to X-Forwarded-For in front of exsync; failed logins are counted per
# the client address they forwarded. One by default behind a proxy that sets the SSL header.
TRUSTED_PROXIES = config.env_int(ENV, "TRUSTED_PROXIES", 1 if SECURE_PROXY_SSL_HEADER else 0)
AXES_CLIENT_IP_CALLABLE = partial(config.client_ip, trusted_proxies=TRUSTED_PROXIES)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": ENV.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
