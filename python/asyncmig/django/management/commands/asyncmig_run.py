from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ... import backend, conf
from ._common import add_database_argument, get_connection


class Command(BaseCommand):
    help = ("Queue a run of asyncmig migrations (SCHEDULED, ERROR or FINISHED ones): "
            "their forwards SQL, or with --backwards their backwards SQL.")

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="+", metavar="NAME")
        parser.add_argument("--backwards", action="store_true", help="Run the backwards SQL.")
        parser.add_argument("--wait", action="store_true",
                            help="Wait until they ended; fail if one ended in ERROR.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --wait: give up after this many seconds.")
        add_database_argument(parser)

    def handle(self, *args, **options):
        names = list(options["names"])
        connection = get_connection(options)
        failures = []
        for name in names:
            try:
                with transaction.atomic(using=connection.alias):
                    status = backend.run(connection, name, backwards=options["backwards"])
            except backend.AsyncmigError as exc:
                failures.append("%s: %s" % (name, exc))
                self.stderr.write("asyncmig: cannot run %s: %s" % (name, exc))
                continue
            self.stdout.write("%s %s" % (name, status))
            if connection.vendor == "sqlite" and status == backend.ERROR:
                error = backend.sqlite_error(connection, name)
                self.stderr.write("asyncmig: %s ended in ERROR: %s" % (name, error))
                if options["wait"]:
                    failures.append("%s ended in ERROR: %s" % (name, error))
        if options["wait"] and connection.vendor == "postgresql":
            timeout = options["timeout"] or conf.wait_timeout()
            for name in names:
                if any(f.startswith(name + ":") for f in failures):
                    continue
                try:
                    backend.pg_wait(connection, name, timeout)
                except backend.AsyncmigError as exc:
                    failures.append("%s: %s" % (name, exc))
                    self.stderr.write("asyncmig: %s" % exc)
                    continue
                self.stdout.write("%s FINISHED" % name)
        if failures:
            raise CommandError("%d of %d migration(s) failed:\n%s"
                               % (len(failures), len(names), "\n".join(failures)))
