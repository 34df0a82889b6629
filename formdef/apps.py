from django.apps import AppConfig


class FormdefConfig(AppConfig):
    name = "formdef"
    verbose_name = "Signup form: fields and topics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from formdef import admin_topics  # noqa: F401  (registers the Topic admin; formdef/admin.py has the Field's)
