from django.apps import AppConfig


class TilesConfig(AppConfig):
    name = "tiles"
    verbose_name = "Vector tiles"
    default_auto_field = "django.db.models.BigAutoField"
