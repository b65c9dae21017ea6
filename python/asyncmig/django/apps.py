from django.apps import AppConfig


class AsyncmigConfig(AppConfig):
    name = "asyncmig.django"
    label = "asyncmig"
    verbose_name = "Async migrations"
    default_auto_field = "django.db.models.AutoField"
