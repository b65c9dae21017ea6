"""The words asyncmig stores and answers with, spelled once for Python.

The same words are spelled once for C in ``src/vocabulary.h``; every other
Python module imports them from here.
"""

# the five statuses, exactly as stored in asyncmig.migration.status
SCHEDULED = "SCHEDULED"      # waits for run()
STARTED = "STARTED"          # queued for a worker
IN_PROGRESS = "IN PROGRESS"  # a worker runs it now
FINISHED = "FINISHED"        # last run succeeded
ERROR = "ERROR"              # last run failed
STATUSES = (SCHEDULED, STARTED, IN_PROGRESS, FINISHED, ERROR)
PENDING = (STARTED, IN_PROGRESS)  # queued or running: a worker will act

# asyncmig.migration.direction
FORWARDS = "forwards"
BACKWARDS = "backwards"

# SQLSTATEs the package reacts to
SQLSTATE_QUERY_CANCELED = "57014"         # also: CALL asyncmig.wait timed out
SQLSTATE_INSUFFICIENT_PRIVILEGE = "42501"
SQLSTATE_UNDEFINED_FILE = "58P01"         # CREATE EXTENSION: no control file
SQLSTATE_UNDEFINED_FUNCTION = "42883"     # e.g. schedule_batches before 1.1

# the columns of the status view (asyncmig.status / asyncmig_status)
STATUS_COLUMNS = (
    "name", "status", "direction", "owner", "attempts", "started_at",
    "finished_at", "duration", "progress", "error",
)
