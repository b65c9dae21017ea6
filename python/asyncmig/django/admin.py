from django.contrib import admin, messages
from django.db import connections, transaction

from . import backend, conf
from .models import AsyncMigration


def _connection():
    return connections[conf.database_alias()]


@admin.register(AsyncMigration)
class AsyncMigrationAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "direction", "attempts", "started_at",
                    "finished_at", "duration", "progress", "error")
    list_filter = ("status", "direction")
    search_fields = ("name",)
    readonly_fields = [f.name for f in AsyncMigration._meta.fields]
    actions = ["run_scheduled_migrations"]
    list_per_page = 100

    def get_queryset(self, request):
        connection = _connection()
        if connection.vendor == "sqlite":
            try:
                backend.sqlite_load(connection)
            except backend.SQLiteModuleNotFound as exc:
                self.message_user(request, str(exc), messages.WARNING)
        return super().get_queryset(request).using(conf.database_alias())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Run selected scheduled migrations")
    def run_scheduled_migrations(self, request, queryset):
        connection = _connection()
        started, skipped, failed = [], [], []
        for migration in queryset:
            if migration.status != AsyncMigration.STATUS_SCHEDULED:
                skipped.append("%s (%s)" % (migration.name, migration.status))
                continue
            try:
                with transaction.atomic(using=connection.alias):
                    status = backend.run(connection, migration.name)
            except backend.AsyncmigError as exc:
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
