"""manage.py asyncmig_wait [NAME...] [--timeout S]"""

import time

from django.core.management.base import BaseCommand, CommandError

from .... import vocabulary as v
from ...exceptions import AsyncmigError
from ...migration import describe, wait_for
from ...util import Output
from ._common import add_database_argument, get_backend, project_asyncmig_names


class Command(BaseCommand):
    """Wait for migrations to end; fail on ERROR or timeout."""

    help = ("Wait until asyncmig migrations have ended; exit non-zero when one ended in "
            "ERROR or on timeout. Run it after 'manage.py migrate' in deploy scripts. "
            "Without names: wait for every queued or running migration of the database, "
            "then fail if a migration of this project's migration files is in ERROR. "
            "Says where each one is every ASYNCMIG_PROGRESS_INTERVAL seconds (default 5) "
            "and how each ended.")

    def add_arguments(self, parser):
        """NAME..., --timeout, --database."""
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--timeout", type=float, default=None,
                            help="Give up (and fail) after this many seconds in all.")
        add_database_argument(parser)

    def handle(self, *args, **options):
        """Wait (PostgreSQL), then report what ended in ERROR."""
        names = list(options["names"])
        backend = get_backend(options)
        timeout = options["timeout"]
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be positive")
        out = Output(self.stdout, options["verbosity"], self.style)
        failures = []
        if not backend.synchronous:
            failures = self._wait(backend, names, timeout, out)
        # Both: report what ended in ERROR (named ones, else this project's).
        check = names or project_asyncmig_names(backend.connection)
        rows = {row["name"]: row for row in backend.status_rows(check)} if check else {}
        for name in check:
            row = rows.get(name)
            if row is None:
                if names and backend.synchronous:
                    self.stderr.write("asyncmig: %s is not recorded in this SQLite database "
                                      "(apply_on_sqlite=False?)" % name)
                continue
            if row["status"] == v.ERROR and not any(name in f for f in failures):
                failures.append("asyncmig migration %s (%s) ended in ERROR: %s"
                                % (name, row["direction"], row["error"]))
        if failures:
            raise CommandError("asyncmig_wait failed:\n%s" % "\n".join(failures))
        out("all done", style="SUCCESS")

    def _wait(self, backend, names, timeout, out):
        """Wait for each name (or everything pending) -> failures.  Without
        names: each queued or running migration this role can see, with
        its progress, then CALL asyncmig.wait() for the rest."""
        failures = []
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = names
        if not names:
            pending = [r["name"] for r in backend.status_rows() if r["status"] in v.PENDING]
            if pending:
                out("asyncmig: waiting for %s" % ", ".join(pending))
            else:
                out("asyncmig: nothing queued or running", level=2)
        for name in list(pending) + ([] if names else [None]):
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failures.append("%s: timed out after %g s" % (name or "asyncmig_wait", timeout))
                    continue
            try:
                if name is None:
                    for notice in backend.wait(None, remaining):
                        out(notice, level=2)
                else:
                    wait_for(backend, name, remaining, report=out)
            except AsyncmigError as exc:
                failures.append(str(exc) if name is None else "%s: %s" % (name, exc))
                continue
        if pending and not names:
            rows = backend.status_rows(pending)
            out("asyncmig: ended: %s" % "; ".join("%s %s" % (r["name"], describe(r))
                                                  for r in rows))
        return failures
