"""Tollgate settings: one module, read from the environment (see .env.example).

With DEBUG off (the default) every value is production-safe and SECRET_KEY and ALLOWED_HOSTS
are required. `make run` keeps DEBUG off too, sets the few values a plain-HTTP demo on one's own
machine needs (see portal.devstack), and uses the embedded SQLite database and broker.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.api.conf import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: F401
from portal.env import (
    check_secret_key,
    env_bool,
    env_int,
    env_list,
    env_str,
    env_url,
)
from portal.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TOLLGATE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _development_secret_key() -> str:
    """A per-checkout random key for DEBUG runs, kept in var/ so all local processes share it."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if DEBUG and env_str("SECRET_KEY") is None:
    SECRET_KEY = _development_secret_key()
else:
    SECRET_KEY = check_secret_key(env_str("SECRET_KEY"))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is empty. With DEBUG off, list the host names Tollgate is served under, "
        "comma-separated, e.g. ALLOWED_HOSTS=tollgate.example.com"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "guardian",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "portal.core",
    "sites",
    "approvals",
    "exceptions",
    # Before the webhooks: handlers subscribed in ready() run in the order of this list, and a
    # decision's Odoo outbox row is written before its webhook deliveries.
    "portal.integrations.odoo",
    "portal.audit",
    "portal.webhooks",
    "portal.inbox",
    "portal.integrations.mail",
    "portal.api",
    "portal.notify",
]

MIDDLEWARE = [
    "portal.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.core.middleware.ContentSecurityPolicyMiddleware",
    "portal.audit.context.RequestContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: claims Idempotency-Keys of API mutations per caller.
    "portal.api.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.core.middleware.FormatLocaleMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the outcome of every authentication attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "portal.mailbox.outbox_link",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_database_url = f"sqlite:///{VAR_DIR / 'tollgate.sqlite3'}"
_database_url = env_url(
    "DATABASE_URL",
    _default_database_url,
    schemes={"sqlite", "postgres", "postgresql", "pgsql"},
)
try:
    _database = dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {error}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded database is shared by the web server, the worker and beat: WAL lets readers
    # run beside a writer, and IMMEDIATE transactions take the write lock up front so that two
    # writers queue on the timeout instead of failing with "database is locked".
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # A database that does not answer should fail a request or a probe, not hang it.
    _database.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    if _database["ENGINE"].endswith("postgresql"):
        # Tollgate's queries are short and indexed; PostgreSQL's JIT compiler spent more time
        # compiling the inbox query than running it (see tests/benchmarks/test_inbox_plan.py).
        _database["OPTIONS"].setdefault("options", "-c jit=off")
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Refuses locked-out credentials before any other backend sees them.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Answers object permissions on Site from memberships that are in force right now.
    "sites.backends.SiteRoleBackend",
]
# guardian's own backend is deliberately not installed: it would honour a grant row after its
# membership ended. sites.backends.SiteRoleBackend reads the same direct-FK rows with validity.
SILENCED_SYSTEM_CHECKS = ["guardian.W001"]
GUARDIAN_ANONYMOUS_USER_NAME = None
ANONYMOUS_USER_NAME = None

# Argon2 (Django's recommended hasher) for every new or changed password; a PBKDF2 hash still
# verifies and is rewritten as Argon2 the next time its holder signs in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:home"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# A lockout holds for one username from one address: a guesser is stopped without letting a
# stranger lock a colleague out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Failed sign-ins reach the ledger as one summary per account (or "unknown") and client address
# per window of this many seconds, counted in the cache; each attempt is kept outside the ledger
# for the retention period (purged daily).
SIGN_IN_FAILURE_WINDOW_SECONDS = env_int("SIGN_IN_FAILURE_WINDOW_SECONDS", 900, minimum=60)
SIGN_IN_FAILURE_RETENTION_DAYS = env_int("SIGN_IN_FAILURE_RETENTION_DAYS", 90, minimum=1)
# Axes keeps a typed name that matches no account as a keyed hash, like the ledger.
AXES_USERNAME_CALLABLE = "portal.accounts.lockout_username"
# How many proxies in front of Tollgate append to X-Forwarded-For; 0 trusts only the peer.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "portal.client_ip.client_ip"
AXES_VERBOSE = False
# A password-reset link works once, for this long; reset requests are limited per address (and
# four times that per client IP address) within a window, whether or not the address is known.
PASSWORD_RESET_TIMEOUT = 60 * env_int("PASSWORD_RESET_TIMEOUT_MINUTES", 60, minimum=5)
PASSWORD_RESET_RATE_LIMIT = env_int("PASSWORD_RESET_RATE_LIMIT", 3, minimum=1)
PASSWORD_RESET_RATE_WINDOW_SECONDS = 3600

# --- Internationalisation: UTC in the database, each site's own zone on screen --------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Uploaded files (request attachments). Web replicas share no disk, so production keeps them
# in an S3-compatible store; `make run` keeps them in a folder under var/.
MEDIA_ROOT = VAR_DIR / "media"
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
TOLLGATE_STORAGE = env_str("TOLLGATE_STORAGE", "s3" if AWS_STORAGE_BUCKET_NAME else "filesystem")
if TOLLGATE_STORAGE not in ("filesystem", "s3"):
    raise ImproperlyConfigured("TOLLGATE_STORAGE must be filesystem or s3.")
if TOLLGATE_STORAGE == "s3":
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("TOLLGATE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
            "location": env_str("AWS_LOCATION", ""),
            # Attachments are served only through Tollgate's own permission-checked view.
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
# Largest attachment accepted, in bytes (default 10 MB).
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security: safe unless DEBUG is on ------------------------------------------------------
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (document it in the deployment).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Off only for a plain-HTTP local run (`make run` sets both to false).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Scripts never read the CSRF cookie: htmx sends the token the page carries (base.html).
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A working day; an idle browser left at a warehouse desk does not stay signed in for weeks.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)

# --- Celery ---------------------------------------------------------------------------------
# Without CELERY_BROKER_URL the worker, beat and web server meet in a folder under var/: it
# needs no service and suits `make run` on one machine. Production sets Redis or RabbitMQ.
_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    "filesystem://localhost/",
    schemes={"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem"},
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for folder in ("queue", "processed", "control", "results"):
        (_celery_dir / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        # How long an idle worker waits before looking for new task files again.
        "polling_interval": 0.2,
    }
    _default_result_backend = f"file://{_celery_dir / 'results'}"
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # A task that is not acknowledged within this window is handed to another worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    _default_result_backend = CELERY_BROKER_URL
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    _default_result_backend = "rpc://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _default_result_backend)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# A task is acknowledged only after it ran, and handed back if its worker dies, so a crash
# never loses work; the tasks themselves are idempotent, which makes a second run harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Events arrive unsealed and the sequencer seals them into the chain (portal.audit.sequencer):
# right after the change that wrote them commits, or at the latest by the beat job every
# AUDIT_SEAL_SECONDS. An event still unsealed after AUDIT_MAX_SEAL_SECONDS makes /readyz report
# "degraded" and `verify_audit` exit 2. AUDIT_SEAL_INLINE=1 seals inside each writer's own
# transaction under a lock instead (the way SQLite, with its one writer, always works).
AUDIT_SEAL_SECONDS = env_int("AUDIT_SEAL_SECONDS", 2, minimum=1)
AUDIT_MAX_SEAL_SECONDS = env_int("AUDIT_MAX_SEAL_SECONDS", 10, minimum=1)
AUDIT_SEAL_INLINE = env_bool("AUDIT_SEAL_INLINE", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The periodic jobs, what each is for, and how often: portal/schedule.py.
CELERY_BEAT_SCHEDULE: dict = beat_schedule(
    debug=DEBUG,
    # Sealed by beat only where events arrive unsealed: SQLite and AUDIT_SEAL_INLINE seal as
    # they write.
    seal_every=AUDIT_SEAL_SECONDS
    if _database["ENGINE"].endswith("postgresql") and not AUDIT_SEAL_INLINE
    else None,
)
# A mail above this size (the whole message, attachments included) is refused, with the refusal
# kept where an administrator sees it.
MAIL_MAX_BYTES = env_int("MAIL_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)

# --- Approvals ------------------------------------------------------------------------------
# Policy amount bands are in this currency; request amounts are converted with CurrencyRate.
TOLLGATE_BASE_CURRENCY = env_str("TOLLGATE_BASE_CURRENCY", "EUR")
# Publishing refuses a policy version whose chain of tiers is longer than this.
APPROVAL_MAX_CHAIN = env_int("APPROVAL_MAX_CHAIN", 5, minimum=1)
# Risk signals: how far back and how many past requests they look at.
RISK_HISTORY_DAYS = env_int("RISK_HISTORY_DAYS", 365, minimum=1)
RISK_HISTORY_MIN = env_int("RISK_HISTORY_MIN", 5, minimum=3)
RISK_SPLIT_WINDOW_HOURS = env_int("RISK_SPLIT_WINDOW_HOURS", 72, minimum=1)
# Decision support: similar requests and a recommendation on the request page, suggested
# resolution codes on the case page (shown only at or above this confidence, in percent).
DECISION_ADVICE = env_bool("DECISION_ADVICE", True)
RESOLUTION_ADVICE_MIN_CONFIDENCE = env_int("RESOLUTION_ADVICE_MIN_CONFIDENCE", 40, minimum=1)
# Links in notification e-mails point here.
TOLLGATE_BASE_URL = env_url("TOLLGATE_BASE_URL", "http://127.0.0.1:8000", schemes={"http", "https"})
# With DEBUG off the base URL must be https (portal.checks) unless it names this machine or
# this is on (the plain-HTTP demo of `make run`).
TOLLGATE_BASE_URL_ALLOW_HTTP = env_bool("TOLLGATE_BASE_URL_ALLOW_HTTP", False)
# Decision links in step e-mails: valid this long, once; at or above this amount (base
# currency) the approver types their password again before the decision counts.
APPROVAL_LINK_MAX_AGE_HOURS = env_int("APPROVAL_LINK_MAX_AGE_HOURS", 72, minimum=1)
APPROVAL_LINK_REAUTH_AMOUNT = env_int("APPROVAL_LINK_REAUTH_AMOUNT", 10000, minimum=0)

# --- Exception cases ---
# Days after closing during which the workers of its queue may reopen a case.
CASE_REOPEN_WINDOW_DAYS = env_int("CASE_REOPEN_WINDOW_DAYS", 14, minimum=0)
# Writing off an invoice difference (or damaged returns) of at least this much, in the base
# currency, needs an approval request; the case waits for its outcome.
CASE_RESOLUTION_APPROVAL_THRESHOLD = env_int("CASE_RESOLUTION_APPROVAL_THRESHOLD", 500)

# --- Content security policy ------------------------------------------------------------------
# Pages load scripts, styles and images from Tollgate itself only: no inline script, inline
# event handler or style attribute runs. The API's Redoc page ships an inline script and
# is left out.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/redoc/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Cache -----------------------------------------------------------------------------------
# Shared by every process when CACHE_URL names a Redis server (production: the API's rate limits
# then hold across web replicas); without it each process keeps its own local-memory cache.
CACHE_URL = env_url("CACHE_URL", "locmem://", schemes={"locmem", "redis", "rediss"})
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tollgate"}
        if CACHE_URL.startswith("locmem")
        else {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "tollgate",
        }
    )
}

# --- REST API -------------------------------------------------------------------------------
# REST_FRAMEWORK and SPECTACULAR_SETTINGS, which read nothing from the environment, are in
# portal.api.conf (imported above).
# Tokens live this many days unless their creator says otherwise, and never longer than the max.
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)
# Requests per token (or signed-in user) and period: N/second, N/minute, N/hour or N/day.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/minute")
# Idempotency-Keys are kept this long; an unfinished claim this old is taken over by a retry.
IDEMPOTENCY_KEY_HOURS = env_int("IDEMPOTENCY_KEY_HOURS", 24, minimum=24)
IDEMPOTENCY_ABANDONED_SECONDS = env_int("IDEMPOTENCY_ABANDONED_SECONDS", 300, minimum=30)

# --- Webhooks ---
# Inbound webhook bodies larger than this are refused with 413 before they are verified.
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 256 * 1024, minimum=1024)
# Outbound webhooks: hosts that may be reached even though they resolve to a loopback or
# private address (everything else must be public), whether plain http is allowed (https only by
# default), the POST timeout, attempts per delivery before it is abandoned (retries double from
# a minute up to 6 hours, about a day in all), and consecutive failures that disable a receiver.
WEBHOOK_OUTBOUND_ALLOWED_HOSTS = env_list("WEBHOOK_OUTBOUND_ALLOWED_HOSTS", [])
WEBHOOK_OUTBOUND_ALLOW_HTTP = env_bool("WEBHOOK_OUTBOUND_ALLOW_HTTP", False)
WEBHOOK_OUTBOUND_TIMEOUT_SECONDS = env_int("WEBHOOK_OUTBOUND_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_OUTBOUND_MAX_ATTEMPTS = env_int("WEBHOOK_OUTBOUND_MAX_ATTEMPTS", 12, minimum=1)
WEBHOOK_OUTBOUND_DISABLE_AFTER = env_int("WEBHOOK_OUTBOUND_DISABLE_AFTER", 15, minimum=1)

# --- Audit ledger ---
# Where the daily checkpoint of the ledger's head is also sent: a file path (or file://...)
# on storage the database's administrators cannot rewrite, or an http(s) URL that receives
# {"sequence", "hash", "at"} as JSON. Empty: kept in the database only.
AUDIT_CHECKPOINT_SINK = env_str("AUDIT_CHECKPOINT_SINK", "")
# The auditor area's "verify now" button runs at most once per this many seconds, company-wide.
AUDIT_VERIFY_INTERVAL_SECONDS = env_int("AUDIT_VERIFY_INTERVAL_SECONDS", 300, minimum=0)
# The Ed25519 key that signs export manifests (portal.audit.signing): PEM or the base64 32-byte
# seed, in AUDIT_SIGNING_KEY or in the file AUDIT_SIGNING_KEY_FILE. With DEBUG on and neither
# set, one is generated into var/. Retired public keys stay published for old exports:
# AUDIT_PREVIOUS_PUBLIC_KEYS=<base64 key>@<retired YYYY-MM-DD>,...
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = env_str("AUDIT_SIGNING_KEY_FILE", "")
AUDIT_PREVIOUS_PUBLIC_KEYS = env_list("AUDIT_PREVIOUS_PUBLIC_KEYS", [])

# --- Probes ---
# /readyz reuses its answer this long per process (0: every probe runs every check).
READYZ_CACHE_SECONDS = env_int("READYZ_CACHE_SECONDS", 5, minimum=0)

# --- Metrics ---
# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>"; staff users may
# read it in the browser. Empty: staff users only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# portal.mailbox.OneFilePerMessageBackend writes each message to its own file in this folder
# (`make run` uses it; superusers read them at /outbox/).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tollgate <tollgate@localhost>")
# The notification outbox (portal.notify): a mail server that fails is retried with backoff
# (base, ceiling in seconds) this many times in all, then the notification is marked failed for
# a superuser to see in the admin. Sent notifications are kept this many days.
NOTIFY_BACKOFF_SECONDS = env_int("NOTIFY_BACKOFF_SECONDS", 30, minimum=1)
NOTIFY_BACKOFF_MAX_SECONDS = env_int("NOTIFY_BACKOFF_MAX_SECONDS", 3600, minimum=1)
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 10, minimum=1)
NOTIFY_RETENTION_DAYS = env_int("NOTIFY_RETENTION_DAYS", 30, minimum=1)

# --- Odoo -----------------------------------------------------------------------------------
ODOO_URL = env_url("ODOO_URL", "http://127.0.0.1:8069", schemes={"http", "https"})
# With DEBUG off, ODOO_URL must be https unless it names this machine or a host listed here.
ODOO_ALLOW_HTTP = env_list("ODOO_ALLOW_HTTP", [])
ODOO_DB = env_str("ODOO_DB", "tollgate-demo")
ODOO_LOGIN = env_str("ODOO_LOGIN", "admin")
# The API key is read here and handed only to the connector; it is never logged or rendered.
ODOO_API_KEY = env_str("ODOO_API_KEY", "admin" if DEBUG else None)
# auto: JSON-2 for Odoo 19 and later, /jsonrpc (through OdooRPC) before.
ODOO_PROTOCOL = env_str("ODOO_PROTOCOL", "auto")
ODOO_TIMEOUT = env_int("ODOO_TIMEOUT", 30, minimum=1)
# The raise form's product and partner search: seconds a search answer is reused, and seconds
# one search may wait for Odoo before the field says Odoo could not be searched.
ODOO_SEARCH_CACHE_SECONDS = env_int("ODOO_SEARCH_CACHE_SECONDS", 300, minimum=0)
ODOO_SEARCH_TIMEOUT = env_int("ODOO_SEARCH_TIMEOUT", 5, minimum=1)
ODOO_VERSION = env_str("ODOO_VERSION", "") or None
# Pull: records per search_read, and how far back each run re-reads to catch transactions
# that committed after a later one (Odoo stamps write_date at transaction start).
ODOO_SYNC_BATCH_SIZE = env_int("ODOO_SYNC_BATCH_SIZE", 500, minimum=1)
ODOO_SYNC_OVERLAP_SECONDS = env_int("ODOO_SYNC_OVERLAP_SECONDS", 120, minimum=0)
# Push: retries of transient failures, with exponential backoff and jitter.
ODOO_PUSH_MAX_ATTEMPTS = env_int("ODOO_PUSH_MAX_ATTEMPTS", 8, minimum=1)
ODOO_PUSH_BACKOFF_SECONDS = env_int("ODOO_PUSH_BACKOFF_SECONDS", 5, minimum=0)
ODOO_PUSH_BACKOFF_MAX_SECONDS = env_int("ODOO_PUSH_BACKOFF_MAX_SECONDS", 600, minimum=1)
# After a timed-out call, wait at least this long before retrying: Odoo may still finish the
# call it was given (its limit_time_real defaults to 120 s), and the retry must see its effect.
ODOO_PUSH_SETTLE_SECONDS = env_int("ODOO_PUSH_SETTLE_SECONDS", 180, minimum=0)
# A document that needs several approvals (price override and credit exception on one
# quotation) is changed only when all are approved; until then its update waits this long.
ODOO_PUSH_SIBLING_WAIT_SECONDS = env_int("ODOO_PUSH_SIBLING_WAIT_SECONDS", 300, minimum=1)
# Mapping thresholds: scraps worth less than this (site currency) need no approval, and a
# receipt or bill differing from the order by more than this share opens a case.
ODOO_WRITE_OFF_THRESHOLD = env_int("ODOO_WRITE_OFF_THRESHOLD", 100, minimum=0)
ODOO_MATCH_TOLERANCE_PCT = env_int("ODOO_MATCH_TOLERANCE_PCT", 2, minimum=0)
# A quotation line priced under cost plus this margin, or discounted beyond the cap, needs a
# price override; a receipt or delivery this many hours past its scheduled date is late.
ODOO_PRICE_FLOOR_MARGIN_PCT = env_int("ODOO_PRICE_FLOOR_MARGIN_PCT", 5, minimum=0)
ODOO_DISCOUNT_CAP_PCT = env_int("ODOO_DISCOUNT_CAP_PCT", 15, minimum=0)
ODOO_LATE_GRACE_HOURS = env_int("ODOO_LATE_GRACE_HOURS", 4, minimum=0)
# The boolean custom field on stock.picking that marks a transfer needing a Tollgate decision.
ODOO_TRANSFER_MARKER_FIELD = env_str("ODOO_TRANSFER_MARKER_FIELD", "x_tollgate_approval")

# --- Logging: to stdout, for the process manager to collect ---------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every line passes the redaction filter, so the Odoo API key never reaches a log.
    "filters": {"redact_secrets": {"()": "portal.integrations.odoo.redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
