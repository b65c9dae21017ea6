"""The admin page over the status view, with the action "Run selected
scheduled migrations"."""

from django.contrib import admin, messages
from django.db import connections, transaction

from .. import vocabulary as v
from . import conf
from .backends import backend_for
from .exceptions import AsyncmigError
from .models import AsyncMigration


def _backend():
    return backend_for(connections[conf.database_alias()])


@admin.register(AsyncMigration)
class AsyncMigrationAdmin(admin.ModelAdmin):
    """Read-only list of asyncmig migrations."""

    list_display = ("name", "status", "direction", "attempts", "started_at",
                    "finished_at", "duration", "progress", "error")
    list_filter = ("status", "direction")
    search_fields = ("name",)
    readonly_fields = [f.name for f in AsyncMigration._meta.fields]
    actions = ["run_scheduled_migrations"]
    list_per_page = 100

    def get_queryset(self, request):
        """The rows of the status view (the SQLite module is loaded first:
        its view exists once it was loaded)."""
        try:
            _backend().installed()
        except AsyncmigError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        return super().get_queryset(request).using(conf.database_alias())

    def has_add_permission(self, request):
        """Rows are made by migrations, never by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Rows change through asyncmig.run / asyncmig.cancel only."""
        return False

    def has_delete_permission(self, request, obj=None):
        """The history stays."""
        return False

    @admin.action(description="Run selected scheduled migrations")
    def run_scheduled_migrations(self, request, queryset):
        """Queue a run of each selected SCHEDULED migration."""
        backend = _backend()
        started, skipped, failed = [], [], []
        for migration in queryset:
            if migration.status != v.SCHEDULED:
                skipped.append("%s (%s)" % (migration.name, migration.status))
                continue
            try:
                with transaction.atomic(using=backend.connection.alias):
                    status = backend.run(migration.name)
            except AsyncmigError as exc:
                failed.append("%s: %s" % (migration.name, exc))
                continue
            started.append("%s (%s)" % (migration.name, status))
        if started:
            self.message_user(request, "Started: %s" % ", ".join(started), messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped, not SCHEDULED: %s" % ", ".join(skipped),
                              messages.WARNING)
        for line in failed:
            self.message_user(request, "Could not run %s" % line, messages.ERROR)
