from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime: positions in, live map out"
    default_auto_field = "django.db.models.BigAutoField"
