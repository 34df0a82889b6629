import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("project")


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Project"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from project import checks  # noqa: F401 - registers the system checks
        from project.db import bounds

        pre_migrate.connect(bounds.before_migrate, dispatch_uid="project.db.bounds.before_migrate")
        post_migrate.connect(bounds.after_migrate, dispatch_uid="project.db.bounds.after_migrate")

        _log_backends()


def _log_backends() -> None:
    """Say which database and cache this process runs on (local mode is announced loudly)."""
    replicas = [alias for alias in settings.DATABASES if alias != "default"]
    if settings.LOCAL_MODE:
        logger.warning("DATABASE_URL is not set: local mode on SQLite (%s)", settings.DATABASES["default"]["NAME"])
    else:
        db = settings.DATABASES["default"]
        logger.info("database: PostgreSQL primary %s:%s with %d replica(s)", db["HOST"], db["PORT"], len(replicas))
    if settings.REDIS_URL:
        logger.info("cache: Redis (django-redis, failing open)")
    else:
        logger.warning("REDIS_URL is not set: using the local-memory cache (per process)")
