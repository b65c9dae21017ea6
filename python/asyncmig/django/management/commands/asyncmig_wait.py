import time

from django.core.management.base import BaseCommand, CommandError

from ... import backend
from ._common import add_database_argument, get_connection


class Command(BaseCommand):
    help = ("Wait until the named asyncmig migrations (default: every queued or running "
            "one of this database) have ended. Exits non-zero when one ended in ERROR or "
            "on timeout: run it after 'manage.py migrate' in deploy scripts.")

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--timeout", type=float, default=None,
                            help="Give up (and fail) after this many seconds in all.")
        add_database_argument(parser)

    def handle(self, *args, **options):
        names = list(options["names"])
        connection = get_connection(options)
        timeout = options["timeout"]
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be positive")
        if connection.vendor == "sqlite":
            return self._sqlite(connection, names)
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = []
        for name in (names or [None]):
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failures.append("%s: timed out after %g s" % (name, timeout))
                    continue
            try:
                notices = backend.pg_wait(connection, name, remaining)
            except backend.AsyncmigError as exc:
                failures.append("%s" % exc if name is None else "%s: %s" % (name, exc))
                continue
            if options["verbosity"] >= 2:
                for notice in notices:
                    self.stdout.write(notice)
            if name is not None and options["verbosity"] >= 1:
                self.stdout.write("%s ended" % name)
        if failures:
            raise CommandError("asyncmig_wait failed:\n%s" % "\n".join(failures))
        if options["verbosity"] >= 1:
            self.stdout.write("all done")

    def _sqlite(self, connection, names):
        # SQLite runs migrations synchronously: nothing to wait for, but a
        # named migration that ended in ERROR still fails.
        rows = {row["name"]: row for row in backend.status_rows(connection, list(names) or None)}
        failures = []
        for name in names:
            row = rows.get(name)
            if row is None:
                self.stderr.write("asyncmig: %s is not recorded in this SQLite database "
                                  "(apply_on_sqlite=False?)" % name)
            elif row["status"] == backend.ERROR:
                failures.append("%s ended in ERROR: %s" % (name, row["error"]))
        if failures:
            raise CommandError("asyncmig_wait failed:\n%s" % "\n".join(failures))
        self.stdout.write("all done")
