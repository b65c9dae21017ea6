"""Management commands of asyncmig.django: asyncmig_status, asyncmig_run, asyncmig_wait."""
