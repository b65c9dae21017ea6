"""The admin page over the status view: the list (progress as a bar,
durations rounded, the error's first line), a detail page with the whole
error (SQLSTATE, detail, hint, statement where the view has them) and the
migration's SQL, and the actions an operator needs: run selected scheduled
migrations, run again, restart (batched migrations, from the first key)
and cancel, each of the last three after a confirmation page, each saying
what it did."""

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import connections, transaction
from django.http import HttpResponse
from django.template import engines
from django.utils.html import format_html

from .. import vocabulary as v
from . import conf
from .backends import backend_for
from .exceptions import AsyncmigError
from .models import AsyncMigration
from .util import seconds_text

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")

# the columns of an error's details that a status view may have, and labels
ERROR_DETAILS = (
    (("sqlstate", "error_sqlstate"), "SQLSTATE"),
    (("error_detail", "detail"), "Detail"),
    (("error_hint", "hint"), "Hint"),
    (("error_context", "context"), "Context"),
    (("error_statement", "statement"), "Failing statement"),
)
SQL_COLUMNS = (("forwards_sql", "Forwards SQL"), ("backwards_sql", "Backwards SQL"))

CONFIRM_TEMPLATE = """{% extends "admin/base_site.html" %}{% load admin_urls %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">Home</a> &rsaquo;
<a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a> &rsaquo;
<a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a> &rsaquo;
{{ title }}</div>{% endblock %}
{% block content %}
<div id="asyncmig-confirm">
<p>{{ question }}</p>
{% if eligible %}<ul>{% for m in eligible %}<li>{{ m.name }} ({{ m.status }}, {{ m.direction }})</li>{% endfor %}</ul>{% endif %}
{% if skipped %}<p>Not {{ verb }}, {{ skip_reason }}:</p>
<ul>{% for m in skipped %}<li>{{ m.name }} ({{ m.status }}, {{ m.direction }})</li>{% endfor %}</ul>{% endif %}
<form method="post">{% csrf_token %}
{% for m in queryset %}<input type="hidden" name="{{ action_checkbox_name }}" value="{{ m.pk }}">{% endfor %}
<input type="hidden" name="action" value="{{ action }}">
<input type="hidden" name="post" value="yes">
{% if eligible %}<input type="submit" id="asyncmig-confirm-yes" value="Yes, {{ verb }} {{ eligible|length }}">{% endif %}
<a href="{% url opts|admin_urlname:'changelist' %}" class="button cancel-link">No, take me back</a>
</form></div>
{% endblock %}
"""


def _backend():
    return backend_for(connections[conf.database_alias()])


def view_row(name):
    """Every column the status view has for one migration, as a dict
    (columns added by newer versions of the extension included)."""
    backend = _backend()
    with backend.connection.cursor() as cur:
        cur.execute("SELECT * FROM %s WHERE name = %%s" % backend.status_view, [name])
        row = cur.fetchone()
        if row is None:
            return {}
        return dict(zip([c[0] for c in cur.description], row))


def migration_sql(name):
    """(forwards, backwards) SQL of a migration of this project's migration
    files, when they hold it as text (None where they compute it)."""
    from .migration import _disk_loader, _asyncmig_names
    graph = _disk_loader().graph
    for key in graph.nodes:
        migration = graph.nodes[key]
        if name not in _asyncmig_names(migration):
            continue
        for op in migration.operations:
            obj = getattr(getattr(op, "code", None), "asyncmig_migration", None)
            if obj is not None and obj.name == name:
                return tuple(s if isinstance(s, str) else None
                             for s in (obj.sql_forwards, obj.sql_backwards))
    return None, None


@admin.register(AsyncMigration)
class AsyncMigrationAdmin(admin.ModelAdmin):
    """Read-only list of asyncmig migrations, and the operator's actions."""

    # few and narrow columns: at 1400 px, beside the admin's navigation and
    # the filters, progress and error must be on screen (started at,
    # attempts and owner are on the detail page)
    list_display = ("name", "status_direction", "rounded_duration", "progress_bar",
                    "error_line")
    list_filter = ("status", "direction")
    search_fields = ("name",)
    readonly_fields = ("name", "status", "direction", "owner", "attempts", "started_at",
                       "finished_at", "rounded_duration", "progress_bar", "error", "error_details",
                       "sql")
    fields = readonly_fields
    actions = ["run_scheduled_migrations", "run_again", "restart", "cancel"]
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

    # -- columns
    @admin.display(description="status", ordering="status")
    def status_direction(self, obj):
        """ERROR, and under it the direction of the run."""
        return format_html('{}<br><small>{}</small>', obj.status, obj.direction)

    @admin.display(description="duration", ordering="duration")
    def rounded_duration(self, obj):
        """The duration rounded for people (0.4 s, 12 s, 3 min 05 s)."""
        if obj.duration is None or not hasattr(obj.duration, "total_seconds"):
            return obj.duration or "-"
        return seconds_text(obj.duration)

    @admin.display(description="progress")
    def progress_bar(self, obj):
        """A bar where the progress says a percentage (FINISHED: full),
        and the progress text."""
        text = obj.progress or ""
        match = _PERCENT.search(text)
        value = None
        if obj.status == v.FINISHED and obj.direction == v.FORWARDS:
            value = 100.0
        elif match:
            value = min(float(match.group(1)), 100.0)
        if value is None:
            return format_html('<span style="display:inline-block;max-width:16em">{}</span>',
                               text) if text else "-"
        return format_html('<progress class="asyncmig-progress" max="100" value="{}" '
                           'style="width:8em" title="{}%">{}%</progress><br>'
                           '<small style="display:inline-block;max-width:16em">{}</small>',
                           "%g" % value, "%g" % value, "%g" % value, text)

    @admin.display(description="error")
    def error_line(self, obj):
        """The error's first line, cut at 80 characters (the detail page
        has all of it)."""
        if not obj.error:
            return "-"
        line = str(obj.error).splitlines()[0]
        short = line if len(line) <= 80 else line[:79] + "\u2026"
        return format_html('<span class="asyncmig-error" title="{}" style="display:inline-block;'
                           'max-width:20em">{}</span>', obj.error, short)

    @admin.display(description="error details")
    def error_details(self, obj):
        """SQLSTATE, detail, hint, context and the failing statement, as
        far as the status view has them."""
        row = view_row(obj.name)
        parts = []
        for names, label in ERROR_DETAILS:
            for column in names:
                if row.get(column):
                    parts.append(format_html("<dt>{}</dt><dd><pre>{}</pre></dd>", label,
                                             row[column]))
                    break
        if not parts:
            if not obj.error:
                return "-"
            return "(this version's status view shows the error's message only)"
        return format_html("<dl class=\"asyncmig-error-details\">{}</dl>",
                           format_html("".join(["{}"] * len(parts)), *parts))

    @admin.display(description="SQL")
    def sql(self, obj):
        """The forwards and backwards SQL: from the status view when it
        shows them, else from this project's migration files."""
        row = view_row(obj.name)
        texts = [row.get(column) for column, _ in SQL_COLUMNS]
        if not any(texts):
            texts = list(migration_sql(obj.name))
        parts = [format_html("<dt>{}</dt><dd><pre>{}</pre></dd>", label, text)
                 for (column, label), text in zip(SQL_COLUMNS, texts) if text]
        if not parts:
            return "-"
        return format_html("<dl class=\"asyncmig-sql\">{}</dl>",
                           format_html("".join(["{}"] * len(parts)), *parts))

    # -- actions
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

    def _confirmed(self, request, queryset, *, action, title, verb, question, eligible,
                   skip_reason, call, done):
        """An action in two steps: a confirmation page listing what it
        will do, then (on "Yes") the calls and a message per result."""
        rows = list(queryset)
        ok = [m for m in rows if eligible(m)]
        skipped = [m for m in rows if not eligible(m)]
        if request.POST.get("post") != "yes":
            context = dict(self.admin_site.each_context(request), title=title, verb=verb,
                           question=question, eligible=ok, skipped=skipped, queryset=rows,
                           skip_reason=skip_reason, action=action, opts=self.model._meta,
                           action_checkbox_name=helpers.ACTION_CHECKBOX_NAME)
            template = engines["django"].from_string(CONFIRM_TEMPLATE)
            return HttpResponse(template.render(context, request))
        backend = _backend()
        result, failed = [], []
        for migration in ok:
            try:
                with transaction.atomic(using=backend.connection.alias):
                    status = call(backend, migration.name)
            except AsyncmigError as exc:
                failed.append("%s: %s" % (migration.name, exc))
                continue
            result.append("%s (now %s)" % (migration.name, status))
        if result:
            self.message_user(request, "%s: %s" % (done, ", ".join(result)), messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped, %s: %s" % (skip_reason, ", ".join(
                "%s (%s)" % (m.name, m.status) for m in skipped)), messages.WARNING)
        for line in failed:
            self.message_user(request, "Could not %s %s" % (verb, line), messages.ERROR)
        return None

    @admin.action(description="Run selected migrations again (ERROR, FINISHED, SCHEDULED)")
    def run_again(self, request, queryset):
        """Queue a new run (forwards, or backwards for a row whose last run
        was backwards) of migrations that are not queued or running; a
        batched one resumes after its last batch."""
        return self._confirmed(
            request, queryset, action="run_again", title="Run again", verb="run",
            question="Queue a new run of these migrations, in the direction of their last "
                     "run? A batched migration resumes after its last batch.",
            eligible=lambda m: m.status in (v.ERROR, v.FINISHED, v.SCHEDULED),
            skip_reason="already queued or running",
            call=lambda b, name: b.run(name, backwards=self._backwards(name)),
            done="Queued again")

    @admin.action(description="Restart selected batched migrations from their first key")
    def restart(self, request, queryset):
        """Queue a forwards run that starts from the first key again."""
        return self._confirmed(
            request, queryset, action="restart", title="Restart", verb="restart",
            question="Run these migrations forwards again from the start? A batched "
                     "migration applies its batch_sql to every batch again, also to rows "
                     "it already updated.",
            eligible=lambda m: m.status in (v.ERROR, v.FINISHED, v.SCHEDULED),
            skip_reason="already queued or running",
            call=lambda b, name: b.run(name, restart=True),
            done="Restarted")

    @admin.action(description="Cancel selected migrations")
    def cancel(self, request, queryset):
        """Cancel queued, scheduled or running migrations (they end ERROR)."""
        return self._confirmed(
            request, queryset, action="cancel", title="Cancel", verb="cancel",
            question="Cancel these migrations? A running one is interrupted and ends in "
                     "ERROR (an index it was building is dropped); a queued or scheduled "
                     "one ends in ERROR without running.",
            eligible=lambda m: m.status in (v.SCHEDULED,) + tuple(v.PENDING),
            skip_reason="not queued, scheduled or running",
            call=lambda b, name: b.cancel(name),
            done="Canceled")

    @staticmethod
    def _backwards(name):
        rows = _backend().status_rows([name])
        return bool(rows) and rows[0]["direction"] == v.BACKWARDS
