#!/usr/bin/env python3
"""bench/phases.py - where a tiny migration's time goes, from a server log.

Usage: phases.py SERVER_LOG NAME_PREFIX

The log must come from a cluster with log_min_messages = debug1 and
log_line_prefix = '%m [%p] ' (bench/history.sh with LOGDEBUG=1 sets both).
For every migration whose name starts with NAME_PREFIX, the worker that ran
it is found by its "started" line, and the time between the phase
boundaries it logged (elog(DEBUG1) in src/worker.c and src/launcher.c) and
the postmaster's lines about it is averaged over the migrations.  Prints a
Markdown table: phase, mean ms, share of the whole cycle.
"""
import re
import sys
from datetime import datetime

LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+ \[(\d+)\] (\w+):  (.*)$')


def ts(s):
    return datetime.strptime(s, '%Y-%m-%d %H:%M:%S.%f').timestamp() * 1000.0


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    events = []                     # (ms, pid, message)
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.match(line)
            if m:
                events.append((ts(m.group(1)), int(m.group(2)), m.group(4)))

    # only the part of the log from a little before the first run of the
    # prefix on (process ids are used again over a long log)
    first = next((i for i, (_, _, msg) in enumerate(events)
                  if re.match(r'asyncmig migration "%s' % re.escape(prefix), msg)), 0)
    events = events[max(0, first - 50):]

    # the worker of each migration of the prefix, in start order
    runs = []
    for t, pid, msg in events:
        m = re.match(r'asyncmig migration "([^"]+)" started', msg)
        if m and m.group(1).startswith(prefix):
            runs.append(pid)
    pids = set(runs)

    # per worker pid: its phase times, and the postmaster's exit line
    marks = {pid: {} for pid in pids}
    last_exit = None                # the end of the previous worker's run
    last_registered = None          # the launcher's registration of the next
    prev_exit_of = {}
    registered_for = {}
    for t, pid, msg in events:
        m = re.match(r'background worker "asyncmig worker" \(PID (\d+)\) exited', msg)
        if m:
            wpid = int(m.group(1))
            if wpid in marks:
                marks[wpid]['exited'] = t
            continue
        if msg.startswith('asyncmig launcher: worker for database'):
            last_registered = t
            continue
        if pid in marks:
            m = re.match(r'asyncmig worker phase: (.*)$', msg)
            if m:
                ph = m.group(1)
                if ph == 'connected':
                    prev_exit_of[pid] = last_exit
                    registered_for[pid] = last_registered
                if ph == 'end recorded':
                    last_exit = t
                marks[pid].setdefault(ph, t)

    steps = [
        ('the previous run\'s end recorded → the launcher registers the next worker', 'prev_exit', 'registered'),
        ('registered → the worker connected (fork, InitPostgres)', 'registered', 'connected'),
        ('extension check, rows queued elsewhere', 'connected', 'foreign rows checked'),
        ('the sweep (dead runs, cleanups)', 'foreign rows checked', 'swept'),
        ('dependencies, the claim, its commit', 'swept', 'claimed'),
        ('owner check, batch spec, become owner, SETs', 'claimed', 'session ready'),
        ('the statement (parse, guard, run, commit)', 'session ready', 'statements run'),
        ('RESET, the end recorded, its commit, NOTIFY', 'statements run', 'end recorded'),
    ]
    # not on the way to the next run since the launcher starts the next
    # worker when a run's end is recorded (before, it waited for the exit)
    exit_step = ('its exit (seen by the postmaster), beside the next worker\'s start', 'end recorded', 'exited')
    sums = [0.0] * len(steps)
    exit_sum = 0.0
    n = 0
    for pid in pids:
        mk = dict(marks[pid])
        mk['prev_exit'] = prev_exit_of.get(pid)
        mk['registered'] = registered_for.get(pid)
        vals = []
        for _, a, b in steps + [exit_step]:
            if mk.get(a) is None or mk.get(b) is None:
                break
            vals.append(mk[b] - mk[a])
        if len(vals) != len(steps) + 1 or min(vals) < 0 or vals[0] > 1000:
            continue                # the first run has no previous worker
        n += 1
        for i, v in enumerate(vals[:-1]):
            sums[i] += v
        exit_sum += vals[-1]
    total = sum(sums) / n if n else 0
    print('| phase | mean ms | share |')
    print('|---|---|---|')
    for i, (label, _, _) in enumerate(steps):
        mean = sums[i] / n if n else 0
        print('| %s | %.2f | %.0f %% |' % (label, mean, 100 * mean / total if total else 0))
    print('| **one cycle**, end recorded to end recorded (%d migrations) | **%.2f** | |' % (n, total))
    print('| (%s) | %.2f | |' % (exit_step[0], exit_sum / n if n else 0))


if __name__ == '__main__':
    main()
