import time

from django.core.management.base import BaseCommand, CommandError

from ... import backend
from ._common import add_database_argument, get_connection, project_asyncmig_names


class Command(BaseCommand):
    help = ("Wait until asyncmig migrations have ended; exit non-zero when one ended in "
            "ERROR or on timeout. Run it after 'manage.py migrate' in deploy scripts. "
            "Without names: wait for every queued or running migration of the database, "
            "then fail if a migration of this project's migration files is in ERROR.")

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
        verbosity = options["verbosity"]
        failures = []
        if connection.vendor == "postgresql":
            deadline = None if timeout is None else time.monotonic() + timeout
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
                    failures.append(str(exc) if name is None else "%s: %s" % (name, exc))
                    continue
                if verbosity >= 2:
                    for notice in notices:
                        self.stdout.write(notice)
                if name is not None and verbosity >= 2:
                    self.stdout.write("%s ended" % name)
        # SQLite runs migrations synchronously: nothing to wait for there.
        # Both: report what ended in ERROR (named ones, else this project's).
        check = names or project_asyncmig_names(connection)
        rows = {row["name"]: row for row in backend.status_rows(connection, check)} if check else {}
        for name in check:
            row = rows.get(name)
            if row is None:
                if names and connection.vendor == "sqlite":
                    self.stderr.write("asyncmig: %s is not recorded in this SQLite database "
                                      "(apply_on_sqlite=False?)" % name)
                continue
            if row["status"] == backend.ERROR and not any(name in f for f in failures):
                failures.append("asyncmig migration %s (%s) ended in ERROR: %s"
                                % (name, row["direction"], row["error"]))
        if failures:
            raise CommandError("asyncmig_wait failed:\n%s" % "\n".join(failures))
        if verbosity >= 1:
            self.stdout.write("all done")
