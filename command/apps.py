from django.apps import AppConfig


class CommandConfig(AppConfig):
    name = "command"
    verbose_name = "Dispatch 指挥调度"
    default_auto_field = "django.db.models.BigAutoField"
