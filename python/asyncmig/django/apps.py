"""The Django app ``asyncmig.django``."""

from django.apps import AppConfig


class AsyncmigConfig(AppConfig):
    """Admin page and management commands of asyncmig."""

    name = "asyncmig.django"
    label = "asyncmig"
    verbose_name = "Async migrations"
    default_auto_field = "django.db.models.AutoField"
