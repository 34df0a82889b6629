from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Signups"

    def ready(self) -> None:
        from users import checks, stats  # noqa: F401 - registers the checks, connects the cache receivers
