"""Settings, read from the environment (every variable is in .env.example and docs/configuration.md).

With nothing set the service runs in *local mode*: SQLite and a local-memory cache, a development
SECRET_KEY kept in .local/ — and says so in the log at start-up (project/apps.py).
"""

import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from project.env import (
    SSLMODES,
    admin_url,
    database_config,
    env_bool,
    env_datetime,
    env_float,
    env_int,
    env_languages,
    env_list,
    env_rate,
    env_secret,
    env_str,
    env_weights,
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
# Header holding the client's IP set by the edge (API Gateway's X-Client-IP with private_ingress); empty = none.
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "")
if CLIENT_IP_HEADER and not CLIENT_IP_HEADER.replace("-", "").isalnum():
    raise ImproperlyConfigured("CLIENT_IP_HEADER must be a header name: letters, digits and hyphens")

INSTALLED_APPS = [
    "project.apps.ProjectConfig",
    "users",
    "formdef",  # the fields and topics staff add to the signup form (formdef/)
    "api",  # the public API and the outgoing webhooks (api/)
    "ops",
    "staff.apps.StaffAdminConfig",  # django.contrib.admin with the second factor (staff/access.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_countries",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "anymail",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # django-ninja: /api/v1/ (api/v1.py); its bundled Swagger UI serves the docs page from our static
    "staff.apps.StaffConfig",  # enrolment invitations (staff/enrolment.py); its admin after auth's and django-otp's
]

MIDDLEWARE = [
    "project.requestlog.RequestLogMiddleware",  # a request id and one JSON line per request, around everything
    "ops.middleware.HealthCheckMiddleware",  # the ALB's probes skip ALLOWED_HOSTS and the HTTPS redirect
    "project.i18n.LocaleMiddleware",  # the visitor's language (cookie, Accept-Language); English for staff pages
    "project.middleware.DatabaseUnavailableMiddleware",
    "project.db.middleware.RoutingMiddleware",  # below the 503 handler: its GET retry is tried first
    "django.middleware.security.SecurityMiddleware",
    "project.middleware.CSPMiddleware",  # django-csp's, with the site-wide header built once
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # its token lives in a cookie (no session on public pages)
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.middleware.StaffMiddleware",  # runs STAFF_MIDDLEWARE below, on STAFF_PATHS and the admin only
]
# Middleware only staff pages need, in order; project.middleware.StaffMiddleware runs it for the admin
# (ADMIN_URL) and STAFF_PATHS. Public pages read no session or user: a signup does not pay for these.
STAFF_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the staff second factor
    "staff.middleware.IdleTimeoutMiddleware",  # staff sessions end after STAFF_SESSION_IDLE_MINUTES idle
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
]
STAFF_PATHS = ["/ops/"]  # besides the admin; /ready reads a staff session by itself (ops/views.py)
# Those checks look for these in MIDDLEWARE; project.E001 checks STAFF_MIDDLEWARE instead (project/checks.py).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "axes.W002"]

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
                "users.privacy.site",  # SITE_NAME and SITE_TAGLINE on every page
            ],
        },
    },
]

# --- Database: the primary, read replicas, routing ------------------------------------------------------
# Credentials: DATABASE_SECRET_ARN (the JSON RDS writes for a managed master password) overrides the URLs'
# user and password, for the primary and the replicas; DATABASE_IAM_AUTH uses RDS IAM tokens instead.
DATABASE_SECRET_ARN = env_str("DATABASE_SECRET_ARN")
DATABASE_IAM_AUTH = env_bool("DATABASE_IAM_AUTH", False)
# TLS to PostgreSQL: verify-full against the RDS CA bundle unless told otherwise (docs/database.md).
DATABASE_SSLMODE = env_str("DATABASE_SSLMODE", "verify-full")
if DATABASE_SSLMODE not in SSLMODES:
    raise ImproperlyConfigured(f"DATABASE_SSLMODE={DATABASE_SSLMODE!r} is not one of {sorted(SSLMODES)}")
DATABASE_SSLROOTCERT = env_str("DATABASE_SSLROOTCERT", str(BASE_DIR / "certs" / "rds-global-bundle.pem"))
# Bounded sockets (docs/database.md, "Connections"): keepalives and tcp_user_timeout end a connection to a host that
# vanished; statement/lock timeouts (ms) are set on the app role by setup_db_roles, and sent as a fallback.
DATABASE_BOUNDS = {
    "keepalives_idle": env_int("DATABASE_KEEPALIVES_IDLE", 10, minimum=1),
    "keepalives_interval": env_int("DATABASE_KEEPALIVES_INTERVAL", 5, minimum=1),
    "keepalives_count": env_int("DATABASE_KEEPALIVES_COUNT", 3, minimum=1),
    "tcp_user_timeout": int(env_float("DATABASE_TCP_USER_TIMEOUT", 15.0) * 1000),
    "statement_timeout": int(env_float("DATABASE_STATEMENT_TIMEOUT", 5.0) * 1000),
    "lock_timeout": int(env_float("DATABASE_LOCK_TIMEOUT", 3.0) * 1000),
}
_db = {
    "conn_max_age": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1, maximum=60),
    "tls": {
        "sslmode": DATABASE_SSLMODE,
        "sslrootcert": DATABASE_SSLROOTCERT if DATABASE_SSLMODE.startswith("verify") else "",
    },
    "secret_arn": DATABASE_SECRET_ARN,
    "iam_auth": DATABASE_IAM_AUTH,
    "bounds": DATABASE_BOUNDS,
}
# A kept connection that answered within this many seconds is used without Django's health check (a round
# trip per request); one idle longer is checked first (project/db/postgresql/base.py).
DATABASE_HEALTH_CHECK_IDLE = env_float("DATABASE_HEALTH_CHECK_IDLE", 1.0, minimum=0.0)
# The signup statement binds on the server and is prepared per connection (users/signup_store.py); off behind
# RDS Proxy, which pins a client session to one database connection when it sees a prepared statement.
DATABASE_SERVER_BINDING = env_bool("DATABASE_SERVER_BINDING", True)
# Client-side deadline of every wait on a database (project/db/bounds.py): ends waits on a server that is
# frozen but still acknowledges TCP, which nothing above notices. Longer than statement_timeout.
DATABASE_CLIENT_TIMEOUT = env_float("DATABASE_CLIENT_TIMEOUT", 6.0, minimum=0.1)
# Threads of one process that may wait on one database at once: one gunicorn thread always stays free.
DATABASE_BULKHEAD = max(1, env_int("GUNICORN_THREADS", 4, minimum=1) - 1)
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", "signup_app")  # created by `manage.py setup_db_roles`
if LOCAL_MODE:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
else:
    DATABASES = {"default": database_config("DATABASE_URL", env_str("DATABASE_URL"), **_db)}
for _i, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    DATABASES[f"replica{_i}"] = database_config("DATABASE_REPLICA_URLS", _url, **_db)
# Relative share of reads for each replica, in the order of DATABASE_REPLICA_URLS ("3,1"); default equal.
_replicas = [alias for alias in DATABASES if alias != "default"]
REPLICA_WEIGHTS = dict(zip(_replicas, env_weights("DATABASE_REPLICA_WEIGHTS", len(_replicas)), strict=True))
# Replica routing (project/db/): installed when replicas are configured; see docs/database.md, "Replica routing".
DATABASE_ROUTERS = ["project.db.router.PrimaryReplicaRouter"] if len(DATABASES) > 1 else []
REPLICA_MAX_LAG = env_float("REPLICA_MAX_LAG", 5.0)  # seconds behind the primary before a replica serves nobody
REPLICA_MAX_LAG_BYTES = env_int("REPLICA_MAX_LAG_BYTES", 0, minimum=0)  # 0 = no limit in bytes
REPLICA_CHECK_INTERVAL = env_float("REPLICA_CHECK_INTERVAL", 1.0, minimum=0.05)  # seconds between samples
REPLICA_RETRY_SECONDS = env_float("REPLICA_RETRY_SECONDS", 10.0, minimum=0.1)  # longest breaker back-off
REPLICA_MONITOR_THREAD = True  # sample in a background thread; the test process samples explicitly instead
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions -------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
_redis_timeout = env_float("REDIS_TIMEOUT", 0.5, minimum=0.05)
# Longest circuit-breaker back-off (project/cache.py): after a failure Redis is skipped 1 s, 2 s, 4 s ... up to this.
REDIS_RETRY_SECONDS = env_float("REDIS_RETRY_SECONDS", 10.0, minimum=0.1)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "signup",
            "OPTIONS": {
                "CLIENT_CLASS": "project.cache.CircuitBreakerClient",
                "SOCKET_CONNECT_TIMEOUT": _redis_timeout,
                "SOCKET_TIMEOUT": _redis_timeout,
                # A Redis outage must not break signups: errors are misses. The breaker logs each change of
                # state once (django-redis would log a traceback for every failed call).
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "signup"}}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
# Sessions live in the database with Redis in front: a Redis restart logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Static and media files: whitenoise by default; S3 through django-storages when a bucket is set ---
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
WHITENOISE_ROOT = BASE_DIR / "static" / "root"  # served at / : favicon.ico
WHITENOISE_USE_FINDERS = LOCAL_MODE or DEBUG  # serve straight from the source folders without collectstatic
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
# The CDN (CloudFront with origin access control) in front of the bucket. The bucket itself is private, so
# static files move to S3 only behind one; without it whitenoise keeps serving them from the image.
AWS_S3_CUSTOM_DOMAIN = env_str("AWS_S3_CUSTOM_DOMAIN")
STATIC_ON_S3 = bool(AWS_STORAGE_BUCKET_NAME and AWS_S3_CUSTOM_DOMAIN)
if AWS_STORAGE_BUCKET_NAME:
    # A private bucket: never public ACLs; SigV4 for signed URLs (SigV2 is deprecated and refused in newer regions).
    _s3 = {"bucket_name": AWS_STORAGE_BUCKET_NAME, "default_acl": None, "signature_version": "s3v4"}
    # Media: private objects, handed out as short-lived signed URLs.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_s3, "location": "media", "file_overwrite": False, "querystring_expire": 300},
    }
if STATIC_ON_S3:
    # Static: hashed names, so they can be cached for a year; unsigned URLs through the CDN.
    STORAGES["staticfiles"] = {
        "BACKEND": "storages.backends.s3.S3ManifestStaticStorage",
        "OPTIONS": {
            **_s3,
            "location": "static",
            "querystring_auth": False,
            "custom_domain": AWS_S3_CUSTOM_DOMAIN,
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
        },
    }

# --- Auth, i18n -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Staff need a second factor (TOTP, or a one-time backup code) besides the password: staff/access.py.
STAFF_OTP_REQUIRED = env_bool("STAFF_OTP_REQUIRED", True)
OTP_TOTP_ISSUER = env_str("SITE_NAME", "Signups")  # the name authenticator apps show
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # no TOTP key, QR code or backup code of a colleague in the admin
# An authenticator is enrolled only through an invitation link (manage.py invite_staff, or a superuser's
# "send enrolment link" in the admin), valid this many hours and once: staff/enrolment.py.
STAFF_ENROLMENT_HOURS = env_int("STAFF_ENROLMENT_HOURS", 24, minimum=1, maximum=7 * 24)
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
# The public side speaks these (locale/<code>/; see docs/languages.md); staff pages stay English.
LANGUAGES = env_languages("LANGUAGES", ["en", "de", "fr", "es"])
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 86400
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_TZ = True

# --- HTTPS and hardening (the ALB terminates TLS and forwards X-Forwarded-Proto) -----------------------
# On by default outside local mode; the local tools (make run, tests, bench) serve plain HTTP and set HTTPS=0.
HTTPS = env_bool("HTTPS", not LOCAL_MODE and not DEBUG)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS  # /health and /ready answer first (ops.middleware), so the ALB's HTTP checks pass
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0  # one year
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = HTTPS
# __Host- cookies are only accepted over HTTPS, for this exact host, path /: no subdomain can set them.
SESSION_COOKIE_NAME = "__Host-sessionid" if HTTPS else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if HTTPS else "csrftoken"
ROUTER_COOKIE_NAME = "__Host-db_position" if HTTPS else "db_position"
LANGUAGE_COOKIE_NAME = "__Host-language" if HTTPS else "language"
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600  # a staff working day: staff.middleware signs out after it, whatever the activity
# ... and after this long without a request (staff.middleware.IdleTimeoutMiddleware).
STAFF_SESSION_IDLE_MINUTES = env_int("STAFF_SESSION_IDLE_MINUTES", 30, minimum=1, maximum=8 * 60)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # a signup is well under 1 KB; refuse huge bodies early
DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
if not LOCAL_MODE and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 10 or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured("SECRET_KEY is too weak: use at least 50 random characters")

# Content-Security-Policy (django-csp): only our own origin (and the static files' origin when on S3).
_static_origin = [f"https://{AWS_S3_CUSTOM_DOMAIN}"] if STATIC_ON_S3 else []  # pages load CSS/images from it
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, *_static_origin],
        "style-src": [SELF, *_static_origin],
        "img-src": [SELF, "data:", *_static_origin],
        "font-src": [SELF, *_static_origin],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    }
}

# --- Abuse protection ---------------------------------------------------------------------------------
# Signup POSTs per client IP (X-Forwarded-For, TRUSTED_PROXY_COUNT hops) per window, counted in Redis.
SIGNUP_RATE_LIMIT = env_rate("SIGNUP_RATE_LIMIT", "20/600")
# Admin login: lock out an (IP, username) pair after AXES_FAILURE_LIMIT failures for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
# ... and a username after STAFF_USERNAME_FAILURE_LIMIT failures from any addresses within the cool-off
# (password spraying from many addresses); higher, as anyone may spend it (staff/lockout.py).
STAFF_USERNAME_FAILURE_LIMIT = env_int("STAFF_USERNAME_FAILURE_LIMIT", 20, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_CLIENT_IP_CALLABLE = "project.http.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_LOCKOUT_CALLABLE = "staff.views.staff_lockout"  # that template, 429 with Retry-After
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "username"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Apps whose reads always use the primary: the lockout must see the failure recorded a moment ago.
# A one-time code or enrolment link is checked and spent on the primary too (django-otp locks the device
# row). Staff sessions too: a session missing from the cache (Redis restarted, evicted, its breaker open)
# is read inside the staff middleware, before any retry could move it off a frozen or lagging replica.
ROUTER_PRIMARY_APPS = {"axes", "otp_totp", "otp_static", "staff", "sessions"}

# --- Logging: JSON lines on stdout; no passwords, secrets or full email addresses (project/requestlog.py) -
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level")
LOG_FORMAT = env_str("LOG_FORMAT", "text" if LOCAL_MODE else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "project.requestlog.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "project.requestlog.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {  # formatted by the caller, written by a thread of its own (project/logstream.py)
            "class": "project.logstream.BackgroundStreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"level": "ERROR"},  # 4xx are in the request log already; 5xx keep their traceback
        "botocore": {"level": "WARNING"},
    },
}

# --- Health (ops/health.py): /health for the load balancer, /ready for on-call ---------------------------
# Bearer token that unlocks /ready's detail (WAL positions, errors, router state) besides a staff session.
READY_TOKEN = env_secret("READY_TOKEN")

# --- Ops dashboard (/ops/: CloudWatch beside live health; see docs/operations.md) ---------------
# boto3 also honours AWS_ENDPOINT_URL and its usual credential chain (task role, AWS_PROFILE, ...).
AWS_REGION = env_str("AWS_REGION") or env_str("AWS_DEFAULT_REGION", "us-east-1")
OPS_ALB = env_str("OPS_ALB")  # the LoadBalancer dimension: app/<name>/<id>
OPS_TARGET_GROUP = env_str("OPS_TARGET_GROUP")  # the TargetGroup dimension: targetgroup/<name>/<id>
OPS_ASG = env_str("OPS_ASG")  # Auto Scaling group name (used when OPS_EC2_INSTANCES is empty)
OPS_EC2_INSTANCES = env_list("OPS_EC2_INSTANCES")  # instance ids, one chart line each
OPS_ECS_CLUSTER = env_str("OPS_ECS_CLUSTER")  # ECS cluster and service of the app's tasks (Fargate)
OPS_ECS_SERVICE = env_str("OPS_ECS_SERVICE")
OPS_RDS_INSTANCES = env_list("OPS_RDS_INSTANCES")  # the primary first; replicas are discovered if not listed
OPS_CACHE_CLUSTER = env_str("OPS_CACHE_CLUSTER")  # ElastiCache CacheClusterId
OPS_RDS_PROXY = env_str("OPS_RDS_PROXY")  # RDS Proxy name
OPS_ALARM_PREFIX = env_str("OPS_ALARM_PREFIX")  # only alarms whose names start with this (shared accounts)
OPS_CACHE_SECONDS = env_int("OPS_CACHE_SECONDS", 60, minimum=5, maximum=3600)  # one CloudWatch fetch per this
OPS_PERCENTILES = env_bool("OPS_PERCENTILES", True)  # p95/p99 response time (moto cannot answer them)
OPS_LOG_GROUP = env_str("OPS_LOG_GROUP")  # the app's CloudWatch Logs group: Logs Insights links from the panels
SLO_AVAILABILITY = env_float("SLO_AVAILABILITY", 99.9)  # percent of ALB requests answered without a 5XX
if not 0 < SLO_AVAILABILITY < 100:
    raise ImproperlyConfigured(f"SLO_AVAILABILITY={SLO_AVAILABILITY} must be between 0 and 100 (exclusive)")
SLO_LATENCY_MS = env_int("SLO_LATENCY_MS", 500, minimum=1)  # the latency objective: answered within this many ms
METRICS_NAMESPACE = env_str("METRICS_NAMESPACE", "Signup/App")  # CloudWatch namespace of the app's EMF metrics

# --- Email and queue (users/emails.py sends, users/tasks.py queues; see docs/email.md) ---------------------------
# The queue: django-tasks with its database backend, so an email is queued in the transaction that needs it.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "email"]}}
EMAIL_PROVIDER = env_str("EMAIL_PROVIDER", "console" if LOCAL_MODE else "ses")
if EMAIL_PROVIDER not in {"console", "ses"}:
    raise ImproperlyConfigured(f"EMAIL_PROVIDER={EMAIL_PROVIDER!r} must be console or ses")
EMAIL_BACKEND = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "ses": "anymail.backends.amazon_ses.EmailBackend",  # SES v2 API through boto3: honours AWS_ENDPOINT_URL
}[EMAIL_PROVIDER]
EMAIL_FROM = env_str("EMAIL_FROM", "Signups <no-reply@example.org>")
DEFAULT_FROM_EMAIL = SERVER_EMAIL = EMAIL_FROM
SES_CONFIGURATION_SET = env_str("SES_CONFIGURATION_SET")
ANYMAIL = {
    # Bounded waits and retries for SES: the worker retries a failed send later, with back-off.
    "AMAZON_SES_CLIENT_PARAMS": {
        "region_name": AWS_REGION,
        "config": {"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 2, "mode": "standard"}},
    },
    **({"AMAZON_SES_CONFIGURATION_SET_NAME": SES_CONFIGURATION_SET} if SES_CONFIGURATION_SET else {}),
}
# The absolute origin of links in emails (the public site, e.g. https://signup.example.org).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
if not PUBLIC_BASE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} must start with https:// or http://")
# Where staff open the admin: the origin of enrolment links (staff/enrolment.py); the public site's by default.
STAFF_BASE_URL = env_str("STAFF_BASE_URL", PUBLIC_BASE_URL).rstrip("/")
if not STAFF_BASE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"STAFF_BASE_URL={STAFF_BASE_URL!r} must start with https:// or http://")
# A failed send is tried again after EMAIL_RETRY_SECONDS, doubling each time up to an hour, EMAIL_MAX_ATTEMPTS times.
EMAIL_RETRY_SECONDS = env_float("EMAIL_RETRY_SECONDS", 30.0, minimum=0.05)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 12, minimum=1)
# A claimed email whose worker died is retried after this long (longer than a send's worst case: SES's
# 3 s connect + 10 s read, twice, in ANYMAIL above). The attempt counts either way.
EMAIL_LEASE_SECONDS = env_float("EMAIL_LEASE_SECONDS", 120.0, minimum=0.1)
# Finished queue rows are deleted after QUEUE_KEEP_DAYS; the worker prunes every QUEUE_PRUNE_SECONDS.
QUEUE_KEEP_DAYS = env_int("QUEUE_KEEP_DAYS", 14, minimum=1)
QUEUE_PRUNE_SECONDS = env_float("QUEUE_PRUNE_SECONDS", 600.0, minimum=1.0)
# Signed links: seconds each kind stays valid (users/tokens.py): confirm 7 days, manage-my-data 30 days.
CONFIRM_TTL = env_int("CONFIRM_TTL", 7 * 86400, minimum=60)
MANAGE_TTL = env_int("MANAGE_TTL", 30 * 86400, minimum=60)
# A topic's unsubscribe link (List-Unsubscribe of that topic's mailings, sent by an outside tool): a year.
TOPIC_UNSUBSCRIBE_TTL = env_int("TOPIC_UNSUBSCRIBE_TTL", 365 * 86400, minimum=86400)
# The cookie an emailed link is exchanged for at first use (users/selfservice.py): seconds it opens the pages.
SELF_SERVICE_COOKIE_TTL = env_int("SELF_SERVICE_COOKIE_TTL", 30 * 60, minimum=60, maximum=86400)
# "Send me my link" (/my-data/): requests per client IP and per address per window (requests/seconds).
LINK_RATE_LIMIT_IP = env_rate("LINK_RATE_LIMIT_IP", "10/3600")
LINK_RATE_LIMIT_ADDRESS = env_rate("LINK_RATE_LIMIT_ADDRESS", "3/3600")
# What the list is and who keeps the data: shown on the pages and in every email.
SITE_NAME = env_str("SITE_NAME", "Signups")
SITE_TAGLINE = env_str("SITE_TAGLINE", "News about our service, a few times a year.")
DATA_CONTROLLER = env_str("DATA_CONTROLLER", "Example Ltd, 1 Example Street, London")
PRIVACY_CONTACT = env_str("PRIVACY_CONTACT", "privacy@example.org")
# Retention (the purge, `manage.py purge`): days before unconfirmed signups, network data, withdrawn records go.
RETENTION_UNCONFIRMED_DAYS = env_int("RETENTION_UNCONFIRMED_DAYS", 30, minimum=1)
RETENTION_NETWORK_DAYS = env_int("RETENTION_NETWORK_DAYS", 90, minimum=1)
RETENTION_WITHDRAWN_DAYS = env_int("RETENTION_WITHDRAWN_DAYS", 30, minimum=1)

# --- The API and outgoing webhooks (api/: /api/v1/, and deliveries run by `manage.py worker`; docs/api.md) ---
# Hosts an endpoint may name although they resolve to non-public addresses (a receiver inside the VPC).
WEBHOOK_ALLOWED_HOSTS = [h.lower() for h in env_list("WEBHOOK_ALLOWED_HOSTS", [])]
# Seconds one delivery request may take (connect, send, answer); the lease is this plus a margin.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 15.0, minimum=0.1)
# Multiplies the Standard Webhooks retry schedule (5 s ... 10 h): 1 in production, small in drills and benches.
WEBHOOK_RETRY_SCALE = env_float("WEBHOOK_RETRY_SCALE", 1.0, minimum=0.0)
# Calls per API key per window (requests/seconds), counted in Redis (api/v1.py); fails open like the others.
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "600/60")
# Threads of the worker process that deliver webhooks (each holds one request at a time).
WEBHOOK_DELIVERY_THREADS = env_int("WEBHOOK_DELIVERY_THREADS", 4, minimum=0, maximum=64)
# Keys that encrypt the endpoints' secrets at rest (api/crypto.py), comma-separated: the first encrypts, all
# decrypt (rotation). Secrets Manager in AWS; unset: derived from SECRET_KEY (system check api.W001).
WEBHOOK_SECRET_KEYS = [k.strip() for k in env_secret("WEBHOOK_SECRET_KEYS").split(",") if k.strip()]
if any(len(k) < 32 for k in WEBHOOK_SECRET_KEYS):
    raise ImproperlyConfigured("WEBHOOK_SECRET_KEYS: each key must be at least 32 characters")

# --- Retention and privacy (users/retention.py, `manage.py purge`; /privacy/; SES events at /webhooks/ses/) ---
# The one SNS topic whose messages POST /webhooks/ses/ accepts (SES bounces and complaints; see "Bounces").
SES_EVENTS_TOPIC_ARN = env_str("SES_EVENTS_TOPIC_ARN")
# An SNS message older than this is refused (its MessageId is remembered twice as long: replays go nowhere).
SNS_MAX_AGE_SECONDS = 3600
SNS_CERT_CACHE_SECONDS = 24 * 3600  # a fetched signing certificate is reused this long per process
# Where boto3 is pointed (moto in the tests); the SNS certificate fetch goes there too when set.
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
# Days the CloudWatch log groups keep the logs (the Terraform sets it from the same value): told on /privacy/.
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 30, minimum=1)
PURGE_BATCH_SIZE = 500  # rows per transaction in `manage.py purge`
# Double opt-in's cut-over: signups made before it are never purged as unconfirmed (users/retention.py).
# Unset: when migration 0004 was applied here, plus a day (users.retention.cutover).
DOUBLE_OPT_IN_SINCE = env_datetime("DOUBLE_OPT_IN_SINCE")
# The purge's ceiling: it refuses (without --force) to delete or erase more than this percent of the signups
# in one run, unless that is at most PURGE_MAX_FLOOR rows (a small list may lose a handful at once).
PURGE_MAX_SHARE = env_float("PURGE_MAX_SHARE", 5.0)
PURGE_MAX_FLOOR = env_int("PURGE_MAX_FLOOR", 100, minimum=0)
# The erasure ledger (users/tombstones.py; docs/operations.md "Restore"): every erasure, outside the database,
# so a restored backup brings nobody back. An S3 bucket with Object Lock in AWS; else a local folder.
ERASURE_LEDGER_BUCKET = env_str("ERASURE_LEDGER_BUCKET")
ERASURE_LEDGER_DIR = Path(env_str("ERASURE_LEDGER_DIR") or LOCAL_DIR / "erasure-ledger")
# The HMAC key for addresses in the ledger (Secrets Manager in AWS); unset: derived from SECRET_KEY (users.W011).
ERASURE_LEDGER_KEY = env_secret("ERASURE_LEDGER_KEY")
# Days each entry is locked (Object Lock, COMPLIANCE): at least as long as any backup lives.
ERASURE_LEDGER_RETAIN_DAYS = env_int("ERASURE_LEDGER_RETAIN_DAYS", 35, minimum=1)
# Seconds between checks that the database knows every ledger entry (a restore otherwise: email is held).
ERASURE_LEDGER_CHECK_SECONDS = env_float("ERASURE_LEDGER_CHECK_SECONDS", 300.0, minimum=1.0)
# `manage.py reconfirm`: emails per hour asking pre-cut-over signups to confirm (spread through the outbox).
RECONFIRM_PER_HOUR = env_int("RECONFIRM_PER_HOUR", 200, minimum=1)
