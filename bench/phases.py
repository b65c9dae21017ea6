#!/usr/bin/env python3
"""bench/phases.py - where a tiny migration's time goes, from a server log.

Usage: phases.py SERVER_LOG NAME_PREFIX

The log must come from a cluster with log_min_messages = debug1 and
log_line_prefix = '%m [%p] ' (bench/history.sh with LOGDEBUG=1 sets both).
For every migration whose name starts with NAME_PREFIX, the worker that ran
it is found by its "started" line, and the time between the phase
boundaries it logged (elog(DEBUG1) in src/worker.c and src/launcher.c) and
the postmaster's lines about it is averaged over the migrations.  Prints
Markdown tables: phase, mean ms, share of the whole cycle, for the runs of
workers started after the previous run's end and for those of successors
(started early, released when the previous run's end was recorded; see
src/launcher.c), then what happens beside the way.
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
    last_released = None            # the launcher's release of a successor
    for t, pid, msg in events:
        m = re.match(r'background worker "asyncmig worker" \(PID (\d+)\) exited', msg)
        if m:
            wpid = int(m.group(1))
            if wpid in marks:
                marks[wpid]['exited'] = t
            continue
        if re.match(r'asyncmig launcher: (worker|successor) for database \d+ registered', msg):
            last_registered = t
            continue
        if re.match(r'asyncmig launcher: successor for database \d+ released', msg):
            last_released = t
            continue
        if pid in marks:
            m = re.match(r'asyncmig worker phase: (.*)$', msg)
            if m:
                ph = m.group(1)
                if ph == 'connected':
                    marks[pid]['prev_exit'] = last_exit
                    marks[pid]['registered'] = last_registered
                if ph == 'successor released':
                    marks[pid]['prev_exit'] = last_exit
                    marks[pid]['released'] = last_released
                if ph == 'end recorded':
                    last_exit = t
                marks[pid].setdefault(ph, t)

    tail = [
        ('the sweep (dead runs, cleanups)', 'foreign rows checked', 'swept'),
        ('dependencies, the claim, its commit', 'swept', 'claimed'),
        ('owner check, batch spec, become owner, SETs', 'claimed', 'session ready'),
        ('the statement (parse, guard, run, commit)', 'session ready', 'statements run'),
        ('RESET, the end recorded, its commit, NOTIFY', 'statements run', 'end recorded'),
    ]
    # a worker the launcher started when the previous run's end was recorded
    started = [
        ('the previous run\'s end recorded → the launcher registers the next worker', 'prev_exit', 'registered'),
        ('registered → the worker connected (fork, InitPostgres)', 'registered', 'connected'),
        ('extension check, rows queued elsewhere', 'connected', 'foreign rows checked'),
    ] + tail
    # a successor, started early: only what follows its release is on the way
    released = [
        ('the previous run\'s end recorded → the launcher releases the successor', 'prev_exit', 'released'),
        ('released → the successor goes on (woken, or still connecting)', 'released', 'successor released'),
        ('extension check, rows queued elsewhere (caches warm)', 'successor released', 'foreign rows checked'),
    ] + tail
    beside = [
        ('registered → connected (fork, InitPostgres)', 'registered', 'connected'),
        ('connected → waiting (warm-up reads)', 'connected', 'successor waits'),
        ('its exit after its end recorded (seen by the postmaster)', 'end recorded', 'exited'),
    ]

    def table(title, steps, kind):
        sums = [0.0] * len(steps)
        n = 0
        for pid in pids:
            mk = marks[pid]
            if ('successor released' in mk) != (kind == 'successor'):
                continue
            vals = []
            for _, a, b in steps:
                if mk.get(a) is None or mk.get(b) is None:
                    break
                vals.append(mk[b] - mk[a])
            if len(vals) != len(steps) or min(vals) < 0 or vals[0] > 1000:
                continue            # the first run has no previous worker
            n += 1
            for i, v in enumerate(vals):
                sums[i] += v
        if n == 0:
            return
        total = sum(sums) / n
        print('%s (%d migrations)\n' % (title, n))
        print('| phase | mean ms | share |')
        print('|---|---|---|')
        for i, (label, _, _) in enumerate(steps):
            mean = sums[i] / n
            print('| %s | %.2f | %.0f %% |' % (label, mean, 100 * mean / total if total else 0))
        print('| **one cycle**, end recorded to end recorded | **%.2f** | |\n' % total)

    table('Runs of a worker started after the previous run\'s end', started, 'worker')
    table('Runs of a successor, started while the previous run went on', released, 'successor')

    # beside the way: a successor's start, and every worker's exit
    print('Beside the way (mean ms)\n')
    print('| what | mean ms | workers |')
    print('|---|---|---|')
    for label, a, b in beside:
        vals = [marks[p][b] - marks[p][a] for p in pids
                if marks[p].get(a) is not None and marks[p].get(b) is not None
                and 0 <= marks[p][b] - marks[p][a] < 1000]
        if vals:
            print('| %s | %.2f | %d |' % (label, sum(vals) / len(vals), len(vals)))
    ready = [p for p in pids if marks[p].get('successor waits') is not None
             and marks[p].get('released') is not None]
    if ready:
        early = sum(1 for p in ready if marks[p]['successor waits'] <= marks[p]['released'])
        print('| successors already waiting when released | | %d of %d |' % (early, len(ready)))


if __name__ == '__main__':
    main()
