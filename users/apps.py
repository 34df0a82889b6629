from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Signups"

    def ready(self) -> None:
        from users import stats  # noqa: F401 - connects the cache invalidation receivers
