#!/usr/bin/env python3
"""bench/worker_cpu.py - a worker's CPU per migration, by the function it was in.

Usage: worker_cpu.py PERF_SCRIPT_OUTPUT MIGRATIONS [FREQ]

Reads the text of `perf script` for a `perf record -g -p POSTMASTER` taken
while MIGRATIONS migrations were drained (perf follows the postmaster's
children, so every worker is in it), at FREQ samples per second (default
4000, perf's default for cpu-clock).  Each sample of a worker
(asyncmig_worker_main in its stack) is counted for the outermost asyncmig
function it was in (or the connection's start-up), and the counts are
printed as CPU milliseconds per migration, most first.  Wall-clock
figures on a shared machine move with the load; CPU per migration moves
much less (bench/RESULTS.md, "Where a tiny migration's time goes").
"""
import collections
import sys

OUTER = ('BackgroundWorkerInitializeConnectionByOid', 'proc_exit', 'get_extension_oid')


def stacks(path):
    cur = []
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line.strip():
                if cur:
                    yield cur
                cur = []
            elif line[0] in '\t ':
                parts = line.split()
                if len(parts) >= 2:
                    cur.append(parts[1].split('+')[0])
            else:
                cur = []
    if cur:
        yield cur


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    freq = float(sys.argv[3]) if len(sys.argv) > 3 else 4000.0
    counts = collections.Counter()
    total = 0
    for s in stacks(path):
        if 'asyncmig_worker_main' not in s:
            continue
        total += 1
        below = s[:s.index('asyncmig_worker_main')]
        ours = [f for f in below if f.startswith('am_') or f in OUTER]
        counts[ours[-1] if ours else (below[-1] if below else 'asyncmig_worker_main')] += 1
    ms = lambda c: c / freq / n * 1000.0
    print('| where (outermost function) | CPU ms per migration |')
    print('|---|---|')
    for k, v in counts.most_common(12):
        print('| %s | %.2f |' % (k, ms(v)))
    print('| **a worker, in all** | **%.2f** |' % ms(total))


if __name__ == '__main__':
    main()
