"""manage.py asyncmig_status [NAME...] [--json]"""

import json

from django.core.management.base import BaseCommand

from ._common import add_database_argument, fmt, get_backend, to_json_value

COLUMNS = ("name", "status", "direction", "attempts", "started_at", "duration",
           "progress", "error")


class Command(BaseCommand):
    """Print the status view."""

    help = "Show the status of asyncmig migrations (the view asyncmig.status)."

    def add_arguments(self, parser):
        """NAME..., --json, --database."""
        parser.add_argument("names", nargs="*", metavar="NAME", help="Only these migrations.")
        parser.add_argument("--json", action="store_true", help="Print a JSON list.")
        add_database_argument(parser)

    def handle(self, *args, **options):
        """Print the rows as a table or as JSON."""
        names = list(options["names"])
        rows = get_backend(options).status_rows(names or None)
        if options["json"]:
            self.stdout.write(json.dumps(
                [{k: to_json_value(v) for k, v in row.items()} for row in rows], indent=2))
            return
        if not rows:
            self.stdout.write("no asyncmig migrations")
            return
        table = [COLUMNS] + [tuple(fmt(row[c]) for c in COLUMNS) for row in rows]
        widths = [min(max(len(r[i]) for r in table), 70 if i == 0 else 60)
                  for i in range(len(COLUMNS))]
        for n, r in enumerate(table):
            self.stdout.write("  ".join(cell[:w].ljust(w) for cell, w in zip(r, widths)).rstrip())
            if n == 0:
                self.stdout.write("  ".join("-" * w for w in widths))
