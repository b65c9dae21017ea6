"""An unmanaged model over the status view: ``asyncmig.status`` on
PostgreSQL, ``asyncmig_status`` on SQLite (the database of the setting
ASYNCMIG_DATABASE, default "default").  Read-only: change migrations with
asyncmig.run / asyncmig.cancel (the admin action, ``manage.py asyncmig_run``).
"""

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_duration

from .. import vocabulary as v
from . import conf


def _status_table():
    """The status view of the database ASYNCMIG_DATABASE (known before any
    connection: from its ENGINE)."""
    alias = conf.database_alias()
    engine = settings.DATABASES.get(alias, {}).get("ENGINE", "")
    if "sqlite" in engine:
        return "asyncmig_status"
    return '"asyncmig"."status"'


class _LenientDateTimeField(models.DateTimeField):
    """timestamptz on PostgreSQL; text or a number on SQLite."""

    def get_internal_type(self):
        """No backend converter: from_db_value does it all."""
        return "TextField"

    def from_db_value(self, value, expression, connection):
        """A datetime from timestamptz, text or a Unix time."""
        if value is None or isinstance(value, datetime.datetime):
            return value
        if isinstance(value, (int, float)):
            return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
        parsed = parse_datetime(str(value).replace("T", " ", 1).strip())
        if parsed is None:
            return value
        if settings.USE_TZ and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, datetime.timezone.utc)
        return parsed


class _LenientDurationField(models.DurationField):
    """interval on PostgreSQL; seconds or text on SQLite."""

    def get_internal_type(self):
        """No backend converter: from_db_value does it all."""
        return "TextField"

    def from_db_value(self, value, expression, connection):
        """A timedelta from interval, seconds or text."""
        if value is None or isinstance(value, datetime.timedelta):
            return value
        if isinstance(value, (int, float)):
            return datetime.timedelta(seconds=value)
        parsed = parse_duration(str(value))
        return parsed if parsed is not None else value


class AsyncMigration(models.Model):
    """A row of the status view (read-only)."""

    STATUS_SCHEDULED = v.SCHEDULED
    STATUS_STARTED = v.STARTED
    STATUS_IN_PROGRESS = v.IN_PROGRESS
    STATUS_FINISHED = v.FINISHED
    STATUS_ERROR = v.ERROR
    STATUS_CHOICES = [(s, s) for s in v.STATUSES]

    name = models.TextField(primary_key=True)
    status = models.TextField(choices=STATUS_CHOICES)
    direction = models.TextField()
    owner = models.TextField(null=True)
    attempts = models.IntegerField(null=True)
    started_at = _LenientDateTimeField(null=True)
    finished_at = _LenientDateTimeField(null=True)
    duration = _LenientDurationField(null=True)
    progress = models.TextField(null=True)
    error = models.TextField(null=True)

    class Meta:
        """Unmanaged: the view belongs to the extension (or the module)."""

        managed = False
        db_table = _status_table()
        ordering = ["-started_at", "name"]
        # the app is "Async migrations": the breadcrumb reads
        # "Async migrations > Migrations", not the same words twice
        verbose_name = "migration"
        verbose_name_plural = "migrations"

    def __str__(self):
        return "%s (%s)" % (self.name, self.status)
