"""One settings module, driven by the environment (see .env.example).

With no environment at all it runs the local shape: SQLite and a file-system broker
under var/, file caches, the provider sandbox served by this app. `APP_ENV=production`
refuses the unsafe defaults instead of silently using them.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# Every process of this machine (web workers, Celery pool processes) keeps its Prometheus
# counters in files here, summed at scrape time (config/metrics.py). It must be in the
# environment before prometheus_client is imported; bin/start.sh empties it at start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

APP_ENV = env("APP_ENV", default="local")
if APP_ENV not in {"local", "production"}:
    raise ImproperlyConfigured(f"APP_ENV must be 'local' or 'production', not {APP_ENV!r}")
IS_PRODUCTION = APP_ENV == "production"

DEV_SECRET_KEY = "local-development-key-not-for-production"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
if not IS_PRODUCTION:
    # The test client and the sandbox's callbacks use these names locally.
    ALLOWED_HOSTS += ["testserver", "[::1]"]

if IS_PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("production needs SECRET_KEY set to a random value of 50+ characters")
    if DEBUG:
        raise ImproperlyConfigured("production refuses DEBUG=true")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "conversations",
    "messaging",
    "providers",
    "webhooks",
]

MIDDLEWARE = [
    "config.middleware.RequestMetricsMiddleware",
    "config.middleware.RequestIdMiddleware",
    "config.ratelimit.ApiHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    # Django's own; the config.middleware ones run for the admin and the site, not for /api/.
    "config.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Staff logins (the admin): after AXES_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is refused for AXES_COOLOFF_MINUTES, however right the
# next password. Counted in the database, so every web process and machine agrees.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # the lockouts are logged; its banner at every start is not needed

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
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

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["ENGINE"] = "config.postgresql"  # Django's, with a health check that costs no round trip
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, the
    # busy timeout makes writers wait instead of failing, IMMEDIATE takes the write lock
    # at BEGIN so two transactions never deadlock upgrading a read lock.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
    # A file, not memory, so end-to-end tests can share it with a worker process.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif _pool_size := env.int("DB_POOL_SIZE", default=0):
    # One psycopg pool per process, shared by its threads or greenlets (Celery's threads
    # and gevent pools, a gthread web): otherwise each holds a connection of its own.
    # A connection goes back to the pool after every request or task. Not for prefork.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {"min_size": min(2, _pool_size), "max_size": _pool_size, "timeout": 10}
    _db["OPTIONS"].setdefault("connect_timeout", 5)
else:
    _db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=300))
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
if _db["ENGINE"] == "config.postgresql" and (_idle := env.int("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", default=60)):
    # A transaction left open by a client that vanished (a cut link, a frozen machine)
    # keeps its row locks until TCP gives up, many minutes later, and every send to that
    # conversation waits behind it: PostgreSQL ends such a session after this long.
    _db["OPTIONS"]["options"] = f"-c idle_in_transaction_session_timeout={_idle * 1000}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, circuit breakers, idempotency locks) --------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
            "KEY_PREFIX": "msg",
        }
    }
else:
    # A file cache whose counters are atomic across processes (flock), so the local
    # shape's web workers, Celery worker and beat agree on limits and breaker state.
    CACHES = {
        "default": {
            "BACKEND": "config.cache.LockedFileCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": "msg",
        }
    }

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's, with atomic publishes
    for _sub in ("queue", "processed"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "polling_interval": 0.1,
    }
else:
    # Above the longest task (time limit below), so an unacked task is redelivered only
    # when its worker is really gone.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("BROKER_VISIBILITY_TIMEOUT", default=300)}
    if CELERY_BROKER_URL.startswith("redis"):
        # Tasks a dead worker had taken come back within visibility timeout + interval
        # (kombu's default scans only every 10th interval).
        CELERY_BROKER_TRANSPORT_OPTIONS |= {
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            "unacked_restore_interval": env.int("BROKER_RESTORE_INTERVAL", default=10),
            "unacked_restore_throttle": 1,
            # kombu's default of 10 Redis connections is too few for a gevent pool, whose
            # greenlets ack on their own: it fails with MaxConnectionsError under load.
            "max_connections": env.int("BROKER_MAX_CONNECTIONS", default=10),
        }

CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A send must not hang on a dead broker: fail fast, and let the outbox sweep republish.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's Django fixup closes the database connection around every task (4x slower
# tasks) unless told to reuse it; config/celery.py checks connection health instead.
CELERY_DB_REUSE_MAX = 1_000_000

# --- Messaging ------------------------------------------------------------------------
# /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when set; production refuses it without one.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The queue depth, backlog and breaker gauges read at scrape time: served by the web's
# /metrics and every METRICS_PORT exporter unless off. On many hosts turn them off
# everywhere but one place (beat), so summing over hosts counts each queue once.
METRICS_STATE_GAUGES = env.bool("METRICS_STATE_GAUGES", default=True)
PROVIDER_SANDBOX = env.bool("PROVIDER_SANDBOX", default=not IS_PRODUCTION)
if PROVIDER_SANDBOX:
    # A test double with a table of its own: installed (and migrated) only where it is on.
    INSTALLED_APPS.append("providers.sandbox")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# Provider calls a worker process keeps in flight at once, per provider instance, over
# keep-alive connections (a dispatch batch's calls run side by side).
PROVIDER_MAX_IN_FLIGHT = env.int("PROVIDER_MAX_IN_FLIGHT", default=50)
SANDBOX_LATENCY_MS = env.int("SANDBOX_LATENCY_MS", default=0)
# Mount the bare DRF endpoint `make bench` measures as its ceiling (config/ceiling.py).
BENCH_CEILING = env.bool("BENCH_CEILING", default=False)
MESSAGING_MAX_ATTEMPTS = env.int("MESSAGING_MAX_ATTEMPTS", default=6)
MESSAGING_RETRY_BASE_SECONDS = env.float("MESSAGING_RETRY_BASE_SECONDS", default=2.0)
MESSAGING_RETRY_MAX_SECONDS = env.float("MESSAGING_RETRY_MAX_SECONDS", default=300.0)
# A queued message published this long ago that no worker took, while its queue is
# empty, lost its task (a broker that dropped it): the sweep publishes it again.
MESSAGING_REQUEUE_AFTER_SECONDS = env.float("MESSAGING_REQUEUE_AFTER_SECONDS", default=30.0)
# The outbox relay (messaging/services/outbox.py): on in every worker unless turned off
# (then run `manage.py relay_messages`); it takes up to RELAY_LIMIT due messages at a
# time and publishes one dispatch task per DISPATCH_BATCH_SIZE of them. PostgreSQL wakes
# it by NOTIFY, so it polls only for retries falling due; SQLite has no NOTIFY.
MESSAGING_RELAY = env.bool("MESSAGING_RELAY", default=True)
MESSAGING_RELAY_LIMIT = env.int("MESSAGING_RELAY_LIMIT", default=1000)
MESSAGING_RELAY_POLL_SECONDS = env.float(
    "MESSAGING_RELAY_POLL_SECONDS", default=1.0 if _db["ENGINE"].endswith("postgresql") else 0.1
)
# After a partial batch the relay waits this long, so sends that arrive together leave
# together (one task, one claim, one write) instead of one by one.
MESSAGING_RELAY_LINGER_SECONDS = env.float("MESSAGING_RELAY_LINGER_SECONDS", default=0.02)
MESSAGING_DISPATCH_BATCH_SIZE = env.int("MESSAGING_DISPATCH_BATCH_SIZE", default=50)
MESSAGING_SWEEP_INTERVAL_SECONDS = env.float("MESSAGING_SWEEP_INTERVAL_SECONDS", default=5.0)
# How long a worker owns a message it claimed; past it the sweep reconciles and retries.
MESSAGING_LEASE_SECONDS = env.float("MESSAGING_LEASE_SECONDS", default=max(120.0, 4 * PROVIDER_TIMEOUT_SECONDS))
# A task is killed before its lease runs out, so the sweep never hands a message to a
# second worker while the first is still talking to the provider.
CELERY_TASK_TIME_LIMIT = max(int(MESSAGING_LEASE_SECONDS * 0.75), 2)
CELERY_TASK_SOFT_TIME_LIMIT = max(int(CELERY_TASK_TIME_LIMIT * 0.8), 1)
# Idempotency-Key answers are kept this long; a request holding a key for longer than
# the lock is presumed dead (nothing it did was committed) and the key can be taken over.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_LOCK_SECONDS = env.int("IDEMPOTENCY_LOCK_SECONDS", default=60)
# Scheduled sends (messaging/services/scheduling.py): `send_at` from MIN_SECONDS to
# MAX_DAYS ahead; beat releases the due ones every RELEASE_INTERVAL_SECONDS, CHUNK rows
# per transaction, for at most RELEASE_BUDGET_SECONDS per run (the next run goes on).
MESSAGING_SCHEDULE_MIN_SECONDS = env.int("MESSAGING_SCHEDULE_MIN_SECONDS", default=60)
MESSAGING_SCHEDULE_MAX_DAYS = env.int("MESSAGING_SCHEDULE_MAX_DAYS", default=35)
MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS = env.float("MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS", default=1.0)
MESSAGING_SCHEDULE_RELEASE_CHUNK = env.int("MESSAGING_SCHEDULE_RELEASE_CHUNK", default=1000)
MESSAGING_SCHEDULE_RELEASE_BUDGET_SECONDS = env.float("MESSAGING_SCHEDULE_RELEASE_BUDGET_SECONDS", default=20.0)
# Throughput pacing per sender (docs/scheduling.md): dispatch keeps each sender address to
# its rate across every worker; a sender's own `throughput` overrides its kind's default.
PACING_ENABLED = env.bool("PACING_ENABLED", default=True)
# What the rates count: "messages", or "segments" (an SMS of 3 segments costs 3).
PACING_UNIT = env.str("PACING_UNIT", default="messages")
if PACING_UNIT not in ("messages", "segments"):
    raise ImproperlyConfigured("PACING_UNIT must be messages or segments")
PACING_RATES = {
    "long_code": env.float("PACING_LONG_CODE_PER_SECOND", default=1.0),
    "toll_free": env.float("PACING_TOLL_FREE_PER_SECOND", default=3.0),
    "short_code": env.float("PACING_SHORT_CODE_PER_SECOND", default=100.0),
    "email": env.float("PACING_EMAIL_PER_SECOND", default=1000.0),
}
# A turn at most this far away is waited for in the dispatch task (no trip back to the
# database); a later one is rescheduled.
PACING_HOLD_SECONDS = env.float("PACING_HOLD_SECONDS", default=0.05)
# How long a process remembers senders' kinds and overrides.
PACING_SENDER_CACHE_SECONDS = env.float("PACING_SENDER_CACHE_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE = {
    "messages-release": {
        "task": "messaging.tasks.messages_release",
        "schedule": MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS,
        # A run that waited longer than its interval is stale: the next one does its work.
        "options": {"queue": "maintenance", "expires": max(MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS, 1.0)},
    },
    "messages-sweep": {
        "task": "messaging.tasks.messages_sweep",
        "schedule": MESSAGING_SWEEP_INTERVAL_SECONDS,
        "options": {"queue": "maintenance", "expires": MESSAGING_SWEEP_INTERVAL_SECONDS * 2},
    },
    "idempotency-keys-prune": {
        "task": "messaging.tasks.idempotency_keys_prune",
        "schedule": 3600.0,
        "options": {"queue": "maintenance", "expires": 3600.0},
    },
}
if PROVIDER_SANDBOX:
    # The sandbox posts its delivery receipts when a create wakes it; this catches a wake
    # that was lost (a broker restart) and receipts that failed and fell due again.
    CELERY_BEAT_SCHEDULE["sandbox-callbacks-send"] = {
        "task": "providers.sandbox.tasks.sandbox_callbacks_send",
        "schedule": 10.0,
        "options": {"queue": "sandbox", "expires": 10.0},
    }
# Event webhooks to our API consumers (docs/webhooks.md). Endpoint URLs must be https
# unless WEBHOOK_ALLOW_HTTP, and may not reach loopback, private, link-local or reserved
# addresses (checked at registration and again at every delivery, after DNS) unless
# WEBHOOK_ALLOW_PRIVATE_URLS: both allowed in local, so the sandbox and tests work.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=not IS_PRODUCTION)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=not IS_PRODUCTION)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# The waits after each failed try, in seconds (jittered by +-20%): about three days in all.
WEBHOOK_RETRY_SCHEDULE_SECONDS = [
    float(s)
    for s in env.list(
        "WEBHOOK_RETRY_SCHEDULE_SECONDS",
        default=["5", "300", "1800", "7200", "18000", "36000", "36000", "86400", "86400"],
    )
]
# Recorded events are fanned out by one task per process per this many seconds, which
# takes every event waiting by then, instead of a broker publish per event (0: at once).
WEBHOOK_FAN_OUT_LINGER_SECONDS = env.float("WEBHOOK_FAN_OUT_LINGER_SECONDS", default=0.05)
# A wait up to this long is a Celery countdown; a longer one lives in the database and the
# sweep publishes it when due (as dispatch retries do).
WEBHOOK_COUNTDOWN_MAX_SECONDS = env.float("WEBHOOK_COUNTDOWN_MAX_SECONDS", default=60.0)
# A due delivery (or fan-out) no worker took this long after it was published is
# published again by the sweep: its task was lost (a broker restart, a killed worker).
WEBHOOK_REPUBLISH_AFTER_SECONDS = env.float("WEBHOOK_REPUBLISH_AFTER_SECONDS", default=60.0)
WEBHOOK_SWEEP_INTERVAL_SECONDS = env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=5.0)
# An endpoint failing every try for this long is disabled, with the reason recorded.
WEBHOOK_DISABLE_AFTER_SECONDS = env.float("WEBHOOK_DISABLE_AFTER_SECONDS", default=5 * 86400.0)
# How long a rotated-out secret keeps signing beside the new one, by default.
WEBHOOK_SECRET_OVERLAP_SECONDS = env.int("WEBHOOK_SECRET_OVERLAP_SECONDS", default=24 * 3600)
# How often a process checks whether any endpoint changed (one cache read), so that
# deciding whether a change is worth an event costs a send nothing in between.
WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS = env.float("WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS", default=1.0)
# Events (with their deliveries) older than this are deleted, once none is still open.
WEBHOOK_EVENT_RETENTION_DAYS = env.int("WEBHOOK_EVENT_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["webhook-events-prune"] = {
    "task": "webhooks.tasks.events_prune",
    "schedule": 3600.0,
    "options": {"queue": "webhooks", "expires": 3600.0},
}
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.webhooks_sweep",
    "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS,
    "options": {"queue": "webhooks", "expires": WEBHOOK_SWEEP_INTERVAL_SECONDS * 2},
}
# What an account's numbers answer to the SMS keywords (conversations/keywords.py) when
# the account set no answer of its own (Account.optout_reply, ...); Twilio's wording.
CONSENT_REPLIES = {
    "opt_out": env(
        "CONSENT_OPTOUT_REPLY",
        default="You have successfully been unsubscribed. You will not receive any more messages from this number. "
        "Reply START to resubscribe.",
    ),
    "opt_in": env(
        "CONSENT_OPTIN_REPLY",
        default="You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
        "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    ),
    "help": env("CONSENT_HELP_REPLY", default="Reply STOP to unsubscribe. Msg&Data Rates May Apply."),
}
SMS_MAX_BODY = 1600
MAX_ATTACHMENTS = 10
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=256 * 1024)
BATCH_MAX_MESSAGES = 1000
CONTACT_MAX_ADDRESSES = 20  # phone numbers, and email addresses, per contact
MAX_BATCH_REQUEST_BYTES = env.int("MAX_BATCH_REQUEST_BYTES", default=4 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MAX_REQUEST_BYTES, MAX_BATCH_REQUEST_BYTES)

# Where providers send status callbacks: this service's public base URL (behind a load
# balancer, its address). A machine cannot guess it, so production must be told.
if IS_PRODUCTION and not env("PUBLIC_BASE_URL", default=""):
    raise ImproperlyConfigured("production needs PUBLIC_BASE_URL: where providers reach this service (its balancer)")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8080)}").rstrip("/")
SANDBOX_BASE_URL = env("SANDBOX_BASE_URL", default=f"{PUBLIC_BASE_URL}/sandbox").rstrip("/")

# Provider instances, in failover order for each message type they carry. The default
# is one Twilio-format instance for SMS/MMS and one SendGrid-format instance for email,
# from the TWILIO_* and SENDGRID_* variables; with the sandbox on, each gets a backup
# instance too, so failover can be seen locally. PROVIDERS (JSON) replaces the lot.
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="AC00000000000000000000000000000000")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="sandbox-twilio-auth-token")
TWILIO_PREVIOUS_AUTH_TOKENS = env.list("TWILIO_PREVIOUS_AUTH_TOKENS", default=[])
SENDGRID_API_KEY = env("SENDGRID_API_KEY", default="SG.sandbox-key")
# Base64 DER public keys of the SendGrid Event Webhook (several, to rotate).
SENDGRID_WEBHOOK_PUBLIC_KEYS = env.list("SENDGRID_WEBHOOK_PUBLIC_KEYS", default=[])


def _default_providers() -> dict:
    twilio = {
        "adapter": "providers.twilio.TwilioProvider",
        "types": ["sms", "mms"],
        "base_url": env("TWILIO_BASE_URL", default="https://api.twilio.com"),
        "account_sid": TWILIO_ACCOUNT_SID,
        "auth_token": TWILIO_AUTH_TOKEN,
        "previous_auth_tokens": TWILIO_PREVIOUS_AUTH_TOKENS,
    }
    sendgrid = {
        "adapter": "providers.sendgrid.SendGridProvider",
        "types": ["email"],
        "base_url": env("SENDGRID_BASE_URL", default="https://api.sendgrid.com"),
        "api_key": SENDGRID_API_KEY,
        "public_keys": SENDGRID_WEBHOOK_PUBLIC_KEYS,
    }
    # Calls go through Twilio's Voice API with the same account: an adapter of its own.
    voice = twilio | {"adapter": "providers.twilio_voice.TwilioVoiceProvider", "types": ["voice"]}
    if not PROVIDER_SANDBOX:
        return {"twilio": twilio, "sendgrid": sendgrid, "twilio-voice": voice}
    return {
        "twilio": twilio | {"base_url": f"{SANDBOX_BASE_URL}/twilio"},
        "twilio-backup": twilio | {"base_url": f"{SANDBOX_BASE_URL}/twilio-backup"},
        "sendgrid": sendgrid | {"base_url": f"{SANDBOX_BASE_URL}/sendgrid"},
        "sendgrid-backup": sendgrid | {"base_url": f"{SANDBOX_BASE_URL}/sendgrid-backup"},
        "twilio-voice": voice | {"base_url": f"{SANDBOX_BASE_URL}/twilio-voice"},
        "twilio-voice-backup": voice | {"base_url": f"{SANDBOX_BASE_URL}/twilio-voice-backup"},
    }


PROVIDERS = env.json("PROVIDERS", default=None) or _default_providers()
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_WINDOW_SECONDS = env.int("BREAKER_WINDOW_SECONDS", default=60)
BREAKER_COOLDOWN_SECONDS = env.float("BREAKER_COOLDOWN_SECONDS", default=30.0)

# --- Voice (docs/voice.md) -------------------------------------------------------------
# What callers to an account's numbers hear before the beep, unless the account has its
# own greeting; how long a voicemail may be.
VOICEMAIL_GREETING = env(
    "VOICEMAIL_GREETING", default="Sorry, we cannot take your call. Please leave a message after the tone."
)
VOICEMAIL_MAX_SECONDS = env.int("VOICEMAIL_MAX_SECONDS", default=120)
# Copy each voicemail's recording from the provider into the `recordings` storage (below).
VOICE_RECORDINGS_COPY = env.bool("VOICE_RECORDINGS_COPY", default=False)

# Shared secrets for the assignment-format webhooks (HMAC-SHA256; several, to rotate).
WEBHOOK_SECRETS = env.list("WEBHOOK_SECRETS", default=[])
WEBHOOK_TOLERANCE_SECONDS = 300
# Local default: unsigned webhooks and key-less API calls are accepted (the development
# account). Production refuses both.
ALLOW_UNSIGNED_WEBHOOKS = not IS_PRODUCTION
ALLOW_ANONYMOUS_API = not IS_PRODUCTION

# API keys and sender owners are remembered this long by each process (0: never), so a
# revocation or a sender change reaches every other process within these seconds.
AUTH_CACHE_SECONDS = env.float("AUTH_CACHE_SECONDS", default=5.0)

# --- Rate limits (config/ratelimit.py) ------------------------------------------------
# Requests per window per API key (per client IP without a key), the same across all
# web processes. Webhooks come from a few provider addresses, so theirs is wider.
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMITS = {
    "api": (env.int("RATE_LIMIT_REQUESTS", default=600), env.int("RATE_LIMIT_WINDOW_SECONDS", default=60)),
    "webhooks": (
        env.int("RATE_LIMIT_WEBHOOK_REQUESTS", default=6000),
        env.int("RATE_LIMIT_WINDOW_SECONDS", default=60),
    ),
}
# After the store fails, requests pass unchecked for this long before it is tried again.
RATE_LIMIT_FAILOPEN_SECONDS = env.float("RATE_LIMIT_FAILOPEN_SECONDS", default=5.0)

# --- Django REST Framework ------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["conversations.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["conversations.authentication.HasAccount"],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["config.ratelimit.SlidingWindowThrottle"],
    # Client addresses for anonymous limits: X-Forwarded-For is trusted this many hops.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=None),
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Messaging service API",
    "DESCRIPTION": "Send SMS, MMS and email, receive provider webhooks, browse conversations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MessageTypeEnum": "messaging.models.Message.Type",
        "PhoneMessageTypeEnum": ["sms", "mms"],
        "StatusEnum": "messaging.models.Message.Status",
        "DeliveryStatusEnum": "webhooks.models.Delivery.Status",
    },
    # config.urls.IdConverter: path ids are integers, so generated clients type them so.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
}

# --- Static files, i18n, security -----------------------------------------------------
STATIC_URL = "static/"
# Beside the code, not under VAR_DIR: collectstatic is a build step of the code (the
# Docker image, bin/start.sh), and every machine running that code serves the same files,
# whatever its own VAR_DIR.
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Voicemail recordings (VOICE_RECORDINGS_COPY): files under VAR_DIR, or any
    # S3-compatible store through django-storages when RECORDINGS_S3_BUCKET is set (its
    # credentials from the usual AWS_* variables). Never served as public files: staff
    # listen through the admin, which streams them.
    "recordings": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "recordings")},
    },
}
if RECORDINGS_S3_BUCKET := env("RECORDINGS_S3_BUCKET", default=""):
    STORAGES["recordings"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": RECORDINGS_S3_BUCKET,
            "endpoint_url": env("RECORDINGS_S3_ENDPOINT_URL", default=None),
            "region_name": env("RECORDINGS_S3_REGION", default=None),
            "location": env("RECORDINGS_S3_PREFIX", default="recordings"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if IS_PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging --------------------------------------------------------------------------
# One JSON object per line in production; a readable line locally (config/logs.py).
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json" if IS_PRODUCTION else "console")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
