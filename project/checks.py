"""System checks for configuration mistakes that can be detected at start-up."""

from django.conf import settings
from django.core.checks import Warning, register

ROUTER = "project.db.router.PrimaryReplicaRouter"


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
    if not settings.LOCAL_MODE and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        errors.append(Warning("DATABASE_URL points at SQLite outside local mode.", id="project.W002"))
    return errors
