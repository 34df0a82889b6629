"""Settings, read from the environment (every variable is in .env.example and the README).

With nothing set the service runs in *local mode*: SQLite and a local-memory cache, a development
SECRET_KEY kept in .local/ — and says so in the log at start-up (project/apps.py).
"""

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from project.env import (
    admin_url,
    database_config,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"

# --- Core -------------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
LOCAL_MODE = not env_str("DATABASE_URL")  # no database configured: run on the embedded defaults


def _local_secret_key() -> str:
    """Return a per-checkout development key (local mode only), creating it once."""
    path = LOCAL_DIR / "secret_key"
    if not path.exists():
        LOCAL_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not LOCAL_MODE:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set (or use SECRET_KEY_FILE)")
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
ADMIN_URL = admin_url(env_str("ADMIN_URL", "admin/"))
# How many X-Forwarded-For hops to trust: 0 = connect directly, 1 = behind one ALB.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)

INSTALLED_APPS = [
    "project.apps.ProjectConfig",
    "users",
    "ops",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_countries",
]

MIDDLEWARE = [
    "ops.middleware.HealthCheckMiddleware",  # first: the ALB's probes skip ALLOWED_HOSTS and sessions
    "project.middleware.DatabaseUnavailableMiddleware",
    "project.db.middleware.RoutingMiddleware",  # below the 503 handler: its GET retry is tried first
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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

# --- Database: the primary, read replicas, routing ------------------------------------------------------
_conn_max_age = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
_connect_timeout = env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1, maximum=60)
if LOCAL_MODE:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
else:
    DATABASES = {
        "default": database_config(
            "DATABASE_URL", env_str("DATABASE_URL"), conn_max_age=_conn_max_age, connect_timeout=_connect_timeout
        )
    }
for _i, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    DATABASES[f"replica{_i}"] = database_config(
        "DATABASE_REPLICA_URLS", _url, conn_max_age=_conn_max_age, connect_timeout=_connect_timeout
    )
# Replica routing (project/db/): installed when replicas are configured; see the README's "Routing".
DATABASE_ROUTERS = ["project.db.router.PrimaryReplicaRouter"] if len(DATABASES) > 1 else []
REPLICA_MAX_LAG = env_float("REPLICA_MAX_LAG", 5.0)  # seconds behind the primary before a replica serves nobody
REPLICA_MAX_LAG_BYTES = env_int("REPLICA_MAX_LAG_BYTES", 0, minimum=0)  # 0 = no limit in bytes
REPLICA_CHECK_INTERVAL = env_float("REPLICA_CHECK_INTERVAL", 1.0, minimum=0.05)  # seconds between samples
REPLICA_RETRY_SECONDS = env_float("REPLICA_RETRY_SECONDS", 10.0, minimum=0.1)  # longest breaker back-off
ROUTER_COOKIE_NAME = "db_position"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions -------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
_redis_timeout = env_float("REDIS_TIMEOUT", 0.5, minimum=0.05)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "signup",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": _redis_timeout,
                "SOCKET_TIMEOUT": _redis_timeout,
                # A Redis outage must not break signups: treat errors as misses, and log each one.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "signup"}}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "project.cache"
# Sessions live in the database with Redis in front: a Redis restart logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Static files (whitenoise; S3 arrives with the production-wiring issue) ---------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
_static_backend = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
    if LOCAL_MODE or DEBUG
    else "whitenoise.storage.CompressedManifestStaticFilesStorage"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _static_backend},
}
WHITENOISE_USE_FINDERS = LOCAL_MODE or DEBUG  # serve straight from the source folders without collectstatic

# --- Auth, i18n -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security basics (the production-hardening issue extends these) ----------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # a signup is well under 1 KB; refuse huge bodies early
DATA_UPLOAD_MAX_NUMBER_FIELDS = 50

# --- Logging ------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Ops dashboard (/ops/: CloudWatch beside live health; see the README's "Ops dashboard") ---------
# boto3 also honours AWS_ENDPOINT_URL and its usual credential chain (task role, AWS_PROFILE, ...).
AWS_REGION = env_str("AWS_REGION") or env_str("AWS_DEFAULT_REGION", "us-east-1")
OPS_ALB = env_str("OPS_ALB")  # the LoadBalancer dimension: app/<name>/<id>
OPS_TARGET_GROUP = env_str("OPS_TARGET_GROUP")  # the TargetGroup dimension: targetgroup/<name>/<id>
OPS_ASG = env_str("OPS_ASG")  # Auto Scaling group name (used when OPS_EC2_INSTANCES is empty)
OPS_EC2_INSTANCES = env_list("OPS_EC2_INSTANCES")  # instance ids, one chart line each
OPS_RDS_INSTANCES = env_list("OPS_RDS_INSTANCES")  # the primary first; replicas are discovered if not listed
OPS_CACHE_CLUSTER = env_str("OPS_CACHE_CLUSTER")  # ElastiCache CacheClusterId
OPS_RDS_PROXY = env_str("OPS_RDS_PROXY")  # RDS Proxy name
OPS_ALARM_PREFIX = env_str("OPS_ALARM_PREFIX")  # only alarms whose names start with this (shared accounts)
OPS_CACHE_SECONDS = env_int("OPS_CACHE_SECONDS", 60, minimum=5, maximum=3600)  # one CloudWatch fetch per this
OPS_PERCENTILES = env_bool("OPS_PERCENTILES", True)  # p95/p99 response time (moto cannot answer them)
