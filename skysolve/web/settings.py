"""Django settings of skysolve, read from environment variables only.

See ``.env.example`` for every variable.  Values are checked by the system
checks in :mod:`skysolve.web.checks` (ids ``skysolve.E0xx``/``W0xx``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from skysolve.web.env import envbool, envfloat, envint, envlist, envsecret, envstr

#: Everything the service writes (database, uploads, job results) lives here.
DATA_DIR = Path(envstr("SKYSOLVE_DATA_DIR", "var")).resolve()

DEBUG = envbool("DEBUG", False)

#: Placeholder used when nothing is configured; a system check warns about it.
INSECURE_SECRET_KEY = "insecure-skysolve-development-key"


def _secret_key() -> str:
    configured = envsecret("SECRET_KEY", None)
    if configured:
        return configured
    # `skysolve serve` writes this file on first start so that every process of
    # one installation signs sessions with the same key.
    stored = DATA_DIR / "secret_key"
    if stored.is_file():
        return stored.read_text().strip()
    return INSECURE_SECRET_KEY


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SITE_ROOT = envstr("SITE_ROOT", "http://localhost:8000").rstrip("/")

# Behind nginx terminating TLS (KStars only speaks HTTPS) the scheme comes from
# the proxy; only trust the header when told to.
if envbool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "skysolve.web.apps.WebConfig",
    "skysolve.submissions",
    "skysolve.community",
    "skysolve.queue",
    "skysolve.api",
    "skysolve.front",
    "skysolve.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Clients use root-anchored paths with and without trailing slashes; the URL
# patterns accept both, so redirects (which lose POST bodies) are never needed.
APPEND_SLASH = False

ROOT_URLCONF = "skysolve.web.urls"
WSGI_APPLICATION = "skysolve.web.wsgi.application"

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
            ]
        },
    }
]


def _databases() -> dict[str, Any]:
    default_url = f"sqlite:///{DATA_DIR / 'skysolve.sqlite3'}"
    db: dict[str, Any] = dict(dj_database_url.parse(envstr("DATABASE_URL", default_url)))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # The web server and the workers are separate processes sharing one
        # file: WAL lets readers run during a write, IMMEDIATE transactions
        # take the write lock up front instead of failing on upgrade, and the
        # timeout waits for the lock rather than raising "database is locked".
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        # A new PostgreSQL connection forks a server process: more CPU than a
        # status request itself.  Keep each thread's connection (dj_database_url
        # always sets CONN_MAX_AGE, so assign), checked before reuse so that a
        # restarted server costs one reconnect, not an error.
        db["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60)
        db["CONN_HEALTH_CHECKS"] = True
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

# -- skysolve ----------------------------------------------------------------

#: Uploads are kept under DATA_DIR/uploads, job outputs under DATA_DIR/jobs.
SKYSOLVE_UPLOAD_DIR = DATA_DIR / "uploads"
SKYSOLVE_JOB_DIR = DATA_DIR / "jobs"

#: Accept any API key at /api/login as the anonymous user (ansvr-style local use).
SKYSOLVE_ALLOW_ANY_APIKEY = envbool("SKYSOLVE_ALLOW_ANY_APIKEY", False)
#: "open": whoever knows a job id reads its results (nova); "strict": private
#: jobs answer only their owner and staff.
SKYSOLVE_PRIVATE_RESULTS = envstr("SKYSOLVE_PRIVATE_RESULTS", "open").strip().lower()
#: API sessions live this many days (nova promises at least two weeks).
SKYSOLVE_SESSION_DAYS = envint("SKYSOLVE_SESSION_DAYS", 14)

#: Largest upload (bytes, the whole request body) of /api/upload and the upload
#: form; enforced while the body streams to DATA_DIR/tmp, never held in memory.
SKYSOLVE_MAX_UPLOAD_BYTES = envint("SKYSOLVE_MAX_UPLOAD_MB", 200) * 1024 * 1024
FILE_UPLOAD_HANDLERS = ["skysolve.submissions.uploads.LimitedUploadHandler"]
#: Form fields (request-json) are read into memory: room for SKYSOLVE_MAX_XY_STARS
#: stars sent url-encoded, as astroquery does (Django's default is 2.5 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
#: Submissions per hour per user and per client address (0 = no limit; staff exempt).
SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = envint("SKYSOLVE_RATE_LIMIT_USER_PER_HOUR", 360)
SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = envint("SKYSOLVE_RATE_LIMIT_IP_PER_HOUR", 720)
#: Lookups of distinct job/submission ids that do not exist, per client address
#: and hour, before that address's id lookups answer 429 (0 = no limit; staff exempt).
SKYSOLVE_ID_MISSES_PER_HOUR = envint("SKYSOLVE_ID_MISSES_PER_HOUR", 100)
#: The web site's upload form without signing in (nova allows it); such images are public.
SKYSOLVE_ANONYMOUS_WEB_UPLOAD = envbool("SKYSOLVE_ANONYMOUS_WEB_UPLOAD", False)
#: Anonymous web uploads per client address per hour (on top of the address limit).
SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR = envint("SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR", 20)
#: Behind a proxy: take the client address from the last X-Forwarded-For entry.
USE_X_FORWARDED_FOR = envbool("USE_X_FORWARDED_FOR", False)
#: Most stars accepted in an x/y list.
SKYSOLVE_MAX_XY_STARS = envint("SKYSOLVE_MAX_XY_STARS", 100_000)
SKYSOLVE_MAX_XY_LISTS = envint("SKYSOLVE_MAX_XY_LISTS", 1000)
#: Caps of a tar or zip upload: members (files, directories, links) and total
#: uncompressed bytes, checked while it is read (a tar or zip bomb stops early).
SKYSOLVE_ARCHIVE_MAX_MEMBERS = envint("SKYSOLVE_ARCHIVE_MAX_MEMBERS", 1000)
SKYSOLVE_ARCHIVE_MAX_BYTES = envint("SKYSOLVE_ARCHIVE_MAX_MB", 2048) * 1024 * 1024

#: url_upload fetches: size cap, time cap, and networks allowed despite being private.
SKYSOLVE_URL_FETCH_MAX_BYTES = envint("SKYSOLVE_URL_FETCH_MAX_MB", 100) * 1024 * 1024
SKYSOLVE_URL_FETCH_TIMEOUT = envfloat("SKYSOLVE_URL_FETCH_TIMEOUT", 60.0)
SKYSOLVE_URL_FETCH_ALLOW = envlist("SKYSOLVE_URL_FETCH_ALLOW", [])

#: Queue: "embedded" (database-backed workers started by `skysolve serve`) or
#: "celery" (solves run by `skysolve worker` on any machine reaching the broker).
SKYSOLVE_QUEUE = envstr("SKYSOLVE_QUEUE", "embedded").strip().lower()
#: Solve processes: embedded workers of `skysolve serve`, or the concurrency
#: of one `skysolve worker` in celery mode.
SKYSOLVE_WORKERS = envint("SKYSOLVE_WORKERS", 1)
#: Celery mode: the broker (redis://... or amqp://...) and where results come
#: back (a redis:// URL; by default the broker when it is Redis).
SKYSOLVE_BROKER_URL = envstr("SKYSOLVE_BROKER_URL", "redis://127.0.0.1:6379/0")
SKYSOLVE_RESULT_BACKEND = envstr("SKYSOLVE_RESULT_BACKEND", "") or (
    SKYSOLVE_BROKER_URL if SKYSOLVE_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
#: Celery mode: the broker queue (several installations may share a broker).
SKYSOLVE_CELERY_QUEUE = envstr("SKYSOLVE_CELERY_QUEUE", "skysolve")
#: Celery mode: jobs in flight at once (set to the total worker concurrency).
SKYSOLVE_DISPATCH_SLOTS = envint("SKYSOLVE_DISPATCH_SLOTS", 2)
#: Celery mode: an idle dispatcher slot looks for a job this often; a queued
#: job wakes it at once through Redis, so this only bounds a lost wake-up.
SKYSOLVE_DISPATCH_POLL_SECONDS = envfloat("SKYSOLVE_DISPATCH_POLL_SECONDS", 1.0)
#: Celery mode: image files up to this size travel to the worker as bytes;
#: larger ones have their sources extracted on the web host first.
SKYSOLVE_TASK_MAX_FILE_BYTES = int(envfloat("SKYSOLVE_TASK_MAX_FILE_MB", 16) * 1024 * 1024)
#: Celery mode: a task whose progress has not moved for this long (lost by a
#: restarted broker, or its worker killed) is sent again under the same id.
SKYSOLVE_CELERY_RESEND_SECONDS = envfloat("SKYSOLVE_CELERY_RESEND_SECONDS", 60.0)
#: Wall-clock limit of one job, seconds (also caps a user's `timeout`).
SKYSOLVE_JOB_TIMEOUT = envfloat("SKYSOLVE_JOB_TIMEOUT", 300.0)
#: A worker renews its lease this often; a lease not renewed for this long is
#: taken as a dead worker and the job is queued again.
SKYSOLVE_LEASE_SECONDS = envint("SKYSOLVE_LEASE_SECONDS", 60)
# Idle embedded workers are woken by a queued job; polling is the fallback.
SKYSOLVE_WORKER_POLL_SECONDS = envfloat("SKYSOLVE_WORKER_POLL_SECONDS", 1.0)
# A result file asked for while the worker is still making it (the answer is
# recorded first, the pictures follow) is waited for this long, then 404.
SKYSOLVE_FILE_WAIT_SECONDS = envfloat("SKYSOLVE_FILE_WAIT_SECONDS", 10.0)
# A queued or running job whose job and submission no client has asked about
# for this long is cancelled (0: never; see docs/running.md, "Running for KStars and NINA").
SKYSOLVE_ABANDON_SECONDS = envfloat("SKYSOLVE_ABANDON_SECONDS", 0.0)
#: Niceness of the embedded solve workers `skysolve serve` starts: solves use
#: the CPU that web requests leave, so status polls stay fast during a burst.
SKYSOLVE_WORKER_NICE = envint("SKYSOLVE_WORKER_NICE", 10)
#: Every worker process (idle ones too) reports it is alive this often; one
#: silent for three intervals counts as gone (/metrics, /health/workers).
SKYSOLVE_HEARTBEAT_SECONDS = envfloat("SKYSOLVE_HEARTBEAT_SECONDS", 10.0)
#: How many times a job may be started before a lost worker counts as a failure.
SKYSOLVE_MAX_ATTEMPTS = envint("SKYSOLVE_MAX_ATTEMPTS", 3)
#: Try the scale and position of the owner's earlier solves (same image size) first.
SKYSOLVE_LEARNED_HINTS = envbool("SKYSOLVE_LEARNED_HINTS", True)
#: Dotted path of the solve callable (the engine by default; tests swap in a fake).
#: Where `skysolve index fetch` downloads each index series from ("5200=URL,...").
SKYSOLVE_INDEX_MIRRORS = envstr("SKYSOLVE_INDEX_MIRRORS", "")
SKYSOLVE_SOLVER = envstr("SKYSOLVE_SOLVER", "skysolve.engine.pipeline.solve")

#: When set, GET /metrics needs ``Authorization: Bearer <token>`` (else it is open).
SKYSOLVE_METRICS_TOKEN = envsecret("SKYSOLVE_METRICS_TOKEN", None) or ""
