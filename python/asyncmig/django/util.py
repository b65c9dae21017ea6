"""Small helpers shared by the modules of the asyncmig Django package."""

import datetime
import logging
import sys

from django.db import transaction

logger = logging.getLogger("asyncmig")


def surface_warning(message):
    """Make a warning visible on the console of migrate (stderr), and in the
    log of the "asyncmig" logger when logging is configured for it."""
    if logger.hasHandlers():
        logger.warning(message)
    if not any(getattr(h, "stream", None) is sys.stderr for h in _handlers(logger)):
        sys.stderr.write(message + "\n" if message.startswith("WARNING") else "WARNING: %s\n" % message)
        sys.stderr.flush()


def _handlers(log):
    while log is not None:
        yield from log.handlers
        if not log.propagate:
            break
        log = log.parent


def after_commit(connection, func):
    """Run func once the current transaction of ``connection`` committed
    (at once when there is none); nothing when it rolls back."""
    if connection.in_atomic_block:
        transaction.on_commit(func, using=connection.alias)
    else:
        func()


def to_interval(value, what="a timeout", allow_zero=False):
    """Seconds (a number) or a timedelta -> a timedelta (None stays None);
    refuses negative values, and zero unless allow_zero."""
    if value is None:
        return None
    td = value if isinstance(value, datetime.timedelta) else datetime.timedelta(seconds=float(value))
    seconds = td.total_seconds()
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("%s must be %s, not %r" % (what, "zero or positive" if allow_zero else "positive", value))
    return td


class Output:
    """Where the package says what happened: the output of the management
    command that runs it (migrate's, asyncmig_wait's), at its verbosity;
    the "asyncmig" logger when no command runs it."""

    def __init__(self, stream=None, verbosity=1, style=None):
        self.stream = stream
        self.verbosity = verbosity
        self.style = style
        self.started_line = False

    def __call__(self, text, level=1, style=None):
        """Print one line (when verbosity >= level)."""
        if self.stream is None:
            logger.info(text)
            return
        if self.verbosity < level:
            return
        if style and self.style is not None:
            text = getattr(self.style, style)(text)
        self.stream.write(text)
        flush = getattr(self.stream, "flush", None)
        if flush:
            flush()

    @classmethod
    def of_command(cls):
        """The output of the management command this code runs inside
        (found on the stack: migrate calls RunPython's code, which has no
        other way to reach migrate's stdout and verbosity)."""
        from django.core.management.base import BaseCommand
        from django.core.management.commands.migrate import Command as Migrate

        frame = sys._getframe(1)
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, BaseCommand) and getattr(obj, "stdout", None) is not None:
                kind = MigrateOutput if isinstance(obj, Migrate) else Output
                return kind(obj.stdout, getattr(obj, "verbosity", 1), getattr(obj, "style", None))
            frame = frame.f_back
        return cls()


class MigrateOutput(Output):
    """migrate's output: its "  Applying NAME..." line is still open (its
    " OK" comes after the migration committed), so each of our lines
    starts on a line of its own, indented."""

    def __call__(self, text, level=1, style=None):
        """One indented line after migrate's open one."""
        if self.verbosity < level:
            return
        if style and self.style is not None:
            text = getattr(self.style, style)(text)
        # the first line ends migrate's open "Applying NAME..." line; its
        # " OK" then comes on a line of its own
        self.stream.write(("    " if self.started_line else "\n    ") + text)
        self.started_line = True
        flush = getattr(self.stream, "flush", None)
        if flush:
            flush()


def seconds_text(td):
    """A duration rounded for people: 0.4 s, 12 s, 3 min 05 s, 2 h 04 min."""
    if td is None:
        return ""
    total = td.total_seconds() if isinstance(td, datetime.timedelta) else float(td)
    if total < 10:
        return "%.1f s" % total
    total = int(round(total))
    if total < 60:
        return "%d s" % total
    if total < 3600:
        return "%d min %02d s" % divmod(total, 60)
    h, rem = divmod(total, 3600)
    return "%d h %02d min" % (h, rem // 60)
