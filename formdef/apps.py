from django.apps import AppConfig


class FormdefConfig(AppConfig):
    name = "formdef"
    verbose_name = "Signup form: fields and topics"
    default_auto_field = "django.db.models.BigAutoField"
