"""manage.py asyncmig_run NAME... [--backwards | --restart] [--wait [--timeout S]]"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from .... import vocabulary as v
from ... import conf
from ...exceptions import AsyncmigError
from ...migration import describe, wait_for
from ...util import Output
from ._common import add_database_argument, get_backend


class Command(BaseCommand):
    """Queue runs of recorded migrations."""

    help = ("Queue a run of asyncmig migrations (SCHEDULED, ERROR or FINISHED ones): "
            "their forwards SQL, or with --backwards their backwards SQL.")

    def add_arguments(self, parser):
        """NAME..., --backwards, --wait, --timeout, --database."""
        parser.add_argument("names", nargs="+", metavar="NAME")
        parser.add_argument("--backwards", action="store_true", help="Run the backwards SQL.")
        parser.add_argument("--restart", action="store_true",
                            help="A batched migration starts again from its first key "
                                 "(a new forwards run resumes after its last batch).")
        parser.add_argument("--wait", action="store_true",
                            help="Wait until they ended; fail if one ended in ERROR.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --wait: give up after this many seconds.")
        add_database_argument(parser)

    def handle(self, *args, **options):
        """Run each name; with --wait, wait for each and fail on ERROR."""
        names = list(options["names"])
        if options["restart"] and options["backwards"]:
            raise CommandError("--restart starts a forwards run again: not with --backwards")
        backend = get_backend(options)
        out = Output(self.stdout, options["verbosity"], self.style)
        failures = []
        queued = []
        for name in names:
            try:
                with transaction.atomic(using=backend.connection.alias):
                    status = backend.run(name, backwards=options["backwards"],
                                         restart=options["restart"])
            except AsyncmigError as exc:
                failures.append("%s: %s" % (name, exc))
                self.stderr.write("asyncmig: cannot run %s: %s" % (name, exc))
                continue
            out("%s %s%s" % (name, status, " (queued: a worker runs it)"
                                if status in v.PENDING and not backend.synchronous else ""))
            if backend.synchronous and status == v.ERROR:
                error = backend.error(name)
                self.stderr.write("asyncmig: %s ended in ERROR: %s" % (name, error))
                if options["wait"]:
                    failures.append("%s ended in ERROR: %s" % (name, error))
            else:
                queued.append(name)
        if options["wait"] and not backend.synchronous:
            timeout = options["timeout"] or conf.wait_timeout()
            for name in queued:
                try:
                    row = wait_for(backend, name, timeout, report=out)
                except AsyncmigError as exc:
                    failures.append("%s: %s" % (name, exc))
                    self.stderr.write("asyncmig: %s" % exc)
                    continue
                out("%s %s" % (name, describe(row)), style="SUCCESS")
        if failures:
            raise CommandError("%d of %d migration(s) failed:\n%s"
                               % (len(failures), len(names), "\n".join(failures)))
