"""System checks for configuration mistakes that can be detected at start-up."""

from django.conf import settings
from django.core.checks import Warning, register

ROUTER = "project.db.router.PrimaryReplicaRouter"
MIDDLEWARE = "project.db.middleware.RoutingMiddleware"


@register()
def check_replica_routing(app_configs, **kwargs):
    replicas = [alias for alias in settings.DATABASES if alias != "default"]
    errors = []
    if replicas and ROUTER not in settings.DATABASE_ROUTERS:
        errors.append(
            Warning(
                "Read replicas are configured but the replica router is not installed: they will never be read.",
                hint=f"Add {ROUTER!r} to DATABASE_ROUTERS, or unset DATABASE_REPLICA_URLS.",
                id="project.W001",
            )
        )
    if ROUTER in settings.DATABASE_ROUTERS and not replicas:
        errors.append(
            Warning(
                "The replica router is installed but no replicas are configured.",
                hint="Set DATABASE_REPLICA_URLS, or remove the router from DATABASE_ROUTERS.",
                id="project.W003",
            )
        )
    if ROUTER in settings.DATABASE_ROUTERS and MIDDLEWARE not in settings.MIDDLEWARE:
        errors.append(
            Warning(
                "The replica router is installed without its middleware: no read-your-writes across requests "
                "and no retry of reads on the primary.",
                hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE, below project.middleware.DatabaseUnavailableMiddleware.",
                id="project.W004",
            )
        )
    if not settings.LOCAL_MODE and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        errors.append(Warning("DATABASE_URL points at SQLite outside local mode.", id="project.W002"))
    return errors


@register(deploy=True)
def check_database_tls(app_configs, **kwargs):
    """verify-full needs the CA bundle on disk; without it every connection fails at request time."""
    from pathlib import Path

    errors = []
    for alias, db in settings.DATABASES.items():
        options = db.get("OPTIONS", {})
        if db["ENGINE"].endswith("sqlite3"):
            continue
        mode = options.get("sslmode", "prefer")
        if (
            mode.startswith("verify")
            and not Path(options.get("sslrootcert") or "~/.postgresql/root.crt").expanduser().exists()
        ):
            errors.append(
                Warning(
                    f"Database {alias!r}: sslmode={mode} but the CA bundle {options.get('sslrootcert')!r} is missing.",
                    hint="Set DATABASE_SSLROOTCERT to the RDS CA bundle (see docs/database.md, Credentials and TLS).",
                    id="project.W005",
                )
            )
        elif mode in {"disable", "allow", "prefer"}:
            errors.append(
                Warning(
                    f"Database {alias!r}: sslmode={mode} does not protect the connection.",
                    hint="Use DATABASE_SSLMODE=verify-full in production.",
                    id="project.W006",
                )
            )
    return errors


STAFF_REQUIRED = [  # what the admin and the login lockout need, in this order, inside STAFF_MIDDLEWARE
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
]


@register()
def check_staff_middleware(app_configs, **kwargs):
    """The admin's own checks (admin.E408-E410, axes.W002, silenced) look in MIDDLEWARE: look where they run."""
    from django.core.checks import Error

    in_order = [path for path in settings.STAFF_MIDDLEWARE if path in STAFF_REQUIRED]
    if "project.middleware.StaffMiddleware" in settings.MIDDLEWARE and in_order == STAFF_REQUIRED:
        return []
    return [
        Error(
            "The admin needs sessions, auth, messages and the login lockout, in that order, on its pages.",
            hint=f"Keep 'project.middleware.StaffMiddleware' in MIDDLEWARE and {STAFF_REQUIRED} in STAFF_MIDDLEWARE.",
            id="project.E001",
        )
    ]
