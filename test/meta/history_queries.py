#!/usr/bin/env python3
"""test/meta/history_queries.py - the SQL texts of src/ on asyncmig.migration.

Usage: history_queries.py REPO PG_CONFIG [--check]

Runs the C preprocessor on each src/*.c (so that the statuses and the
shared fragments, AM_RUNNABLE, AM_SAME_RUN ..., are expanded), joins
adjacent string literals as the compiler does, and keeps those that read
or write asyncmig.migration.  Without --check it prints them (one per
paragraph, whitespace collapsed), which is how sql/history_plans.sql got
its texts.  With --check it fails (exit 1) if a text that
sql/history_plans.sql PREPAREs is not, word for word up to whitespace,
one of them: the regress test must EXPLAIN the queries the C code runs.
"""
import re
import subprocess
import sys
from pathlib import Path

STRINGS = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def norm(s):
    return ' '.join(s.split())


def c_queries(repo, pg_config):
    inc = subprocess.run([pg_config, '--includedir-server'], check=True,
                         capture_output=True, text=True).stdout.strip()
    found = set()
    for c in sorted(Path(repo, 'src').glob('*.c')):
        out = subprocess.run(['gcc', '-E', '-P', '-I', str(Path(repo, 'src')), '-I', inc, str(c)],
                             check=True, capture_output=True, text=True).stdout
        # adjacent literals: "a" "b" (whitespace between) are one string
        pos = 0
        cur = None
        last_end = None
        for m in STRINGS.finditer(out):
            gap = out[last_end:m.start()] if last_end is not None else None
            lit = bytes(m.group(1), 'utf-8').decode('unicode_escape')
            if cur is not None and gap is not None and gap.strip() == '':
                cur += lit
            else:
                if cur is not None:
                    found.add(cur)
                cur = lit
            last_end = m.end()
        if cur is not None:
            found.add(cur)
    return sorted(norm(q) for q in found if 'asyncmig.migration' in q)


def test_queries(repo):
    text = Path(repo, 'sql', 'history_plans.sql').read_text()
    return [(m.group(1), norm(m.group(2))) for m in
            re.finditer(r'^PREPARE (\w+)(?:\([^)]*\))? AS\n(.*?);\n(?=SELECT|EXPLAIN|\\)', text, re.S | re.M)]


def main():
    repo, pg_config = sys.argv[1], sys.argv[2]
    qs = c_queries(repo, pg_config)
    if '--check' not in sys.argv:
        for q in qs:
            print(q + '\n')
        return 0
    known = set(qs)
    tq = test_queries(repo)
    bad = [name for name, q in tq if q not in known]
    if not tq:
        print('history_plans: no PREPAREd query found in sql/history_plans.sql')
        return 1
    for name in bad:
        print('history_plans: the text of %s is not a query of src/*.c (changed there?)' % name)
    print('history_plans: %d queries checked, %d differ' % (len(tq), len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
