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
