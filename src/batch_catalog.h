/*-------------------------------------------------------------------------
 *
 * batch_catalog.h
 *		The batch columns of asyncmig.migration and a batched run's
 *		progress in meta->'batches' (src/batch_catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_BATCH_CATALOG_H
#define ASYNCMIG_BATCH_CATALOG_H

/* the default batch size of schedule_batches(), as in the SQL */
#define AM_BATCH_DEFAULT_SIZE	10000

/* what schedule_batches() records besides what schedule() records */
typedef struct AmBatchArgs
{
	Oid			relid;
	const char *key;
	int			batch_size;
	Datum		pause;			/* interval */
} AmBatchArgs;

/* a batched migration's settings and progress, as recorded in its row */
typedef struct AmBatchSpec
{
	Oid			relid;
	char	   *key;
	int			batch_size;
	int64		pause_ms;
	char	   *last_key;		/* NULL: start at the first key */
	int64		batches;		/* done so far, over every run */
	int64		rows;			/* keys walked so far */
	int64		rows_affected;	/* rows the statement processed so far */
	/* the walk's key, order and bound, fixed when it began (walk_index 0: none recorded) */
	Oid			walk_index;
	Oid			walk_typid;
	Oid			walk_collation;
	Oid			walk_opclass;
	bool		has_upper;		/* upper_key recorded (NULL: nothing to walk) */
	char	   *upper_key;
	/* the batches' size (asyncmig.batch_target_time, batch_run.c) */
	int			size;			/* keys the next batch asks for (0: none saved) */
	double		key_ms;			/* smoothed time per key, ms (0: none yet) */
	/* set by the batch loop when a batch fails: which one */
	int64		failed_batch;	/* 0: none */
	char	   *failed_first;
	char	   *failed_last;
} AmBatchSpec;

/* callers are in am_catalog_enter() */
extern bool am_batch_catalog_available(void);
extern void am_batch_catalog_set_spec(const char *name, const AmBatchArgs *batch);
extern void am_batch_catalog_clear_spec(const char *name);
extern bool am_batch_catalog_is_batched(const char *name);
extern void am_batch_catalog_forget_progress(int64 id);
extern AmBatchSpec *am_batch_catalog_spec(int64 id);
extern void am_batch_catalog_start_run(int64 id, int64 estimate_rows,
									   const char *walk_json,
									   const char *upper_key, int size,
									   int target_ms);
extern void am_batch_catalog_repin(int64 id, Oid indexid);
extern bool am_batch_catalog_lock_run(int64 id, int pid);
extern void am_batch_catalog_progress(int64 id, int pid, const char *last_key,
									  int64 walked, int64 affected, int size,
									  int target_ms, int64 batch_ms);
extern char *am_batch_catalog_error_json(const AmBatchSpec *spec);

#endif							/* ASYNCMIG_BATCH_CATALOG_H */
