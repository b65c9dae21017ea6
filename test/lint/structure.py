#!/usr/bin/env python3
"""test/lint/structure.py - the structure rules of src/ (src/asyncmig.h):

  * no dependency cycle between the C files of src/: neither through their
    headers (x.c includes y.h, directly or through another header of src/:
    x.c -> y.c) nor through their symbols (x.o uses a symbol y.o defines);
  * no C file over 800 lines (src/ and src/sqlite/);
  * every symbol a built object of src/ exports (nm -g --defined-only)
    carries its file's prefix: am_<file>_ (am_exec_ for executor.c,
    am_catalog_ for catalog*.c), or is one PostgreSQL looks up by name:
    asyncmig_* (bgworker entry points, SQL-callable functions),
    pg_finfo_*, _PG_init, Pg_magic_func; asyncmig.so exports nothing else.

Usage: python3 test/lint/structure.py [TREE]   (TREE: the checkout, already
built by make for the symbol checks; without src/*.o those are skipped with
a note).  Prints each violation as FILE:LINE: message; exits 1 if any.
Python 3 standard library and binutils' nm only.
"""
import os
import re
import subprocess
import sys

MAX_LINES = 800
# files whose prefix is not am_<file>_ (src/asyncmig.h, "Names")
PREFIX = {'executor': ('am_exec_',)}
LOOKED_UP = re.compile(r'^(asyncmig_\w+|pg_finfo_\w+|_PG_init|Pg_magic_func)$')
# what the linker itself defines in a shared library
LINKER = {'_init', '_fini', '__bss_start', '_edata', '_end'}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# headers every file may include: asyncmig.h (the file map, _PG_init, the
# vocabulary) is asyncmig.c's only in name
COMMON_HEADERS = {'asyncmig.h'}
# Include cycles known and accepted, each with why.  Keep this empty: a new
# entry needs a reason as good as this one's.
KNOWN_INCLUDE_CYCLES = {
    frozenset({'catalog.c', 'session.c'}):
        'session.c includes catalog.h for the struct AmMigration only (it calls '
        'nothing of catalog.c; the symbol check below holds that); to end it, '
        'move AmMigration into a header of its own',
}

problems = []


def problem(where, msg):
    problems.append(f'{where}: {msg}')


def prefixes(stem):
    if stem in PREFIX:
        return PREFIX[stem]
    if stem.startswith('catalog'):
        return ('am_catalog_',)
    return (f'am_{stem}_',)


def cycles(graph):
    """Strongly connected groups of more than one node (Tarjan)."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comps


def main():
    tree = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), '..', '..'))
    src = os.path.join(tree, 'src')
    cfiles = sorted(f for f in os.listdir(src) if f.endswith('.c'))
    stems = {f[:-2] for f in cfiles}

    # C files over MAX_LINES lines
    for d in (src, os.path.join(src, 'sqlite')):
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith('.c'):
                with open(os.path.join(d, f), encoding='utf-8', errors='replace') as fh:
                    n = sum(1 for _ in fh)
                if n > MAX_LINES:
                    problem(os.path.relpath(os.path.join(d, f), tree),
                            f'{n} lines, more than {MAX_LINES}: split it by subject')

    # include graph: file -> the headers of src/ it includes (with line)
    def includes(name):
        out = []
        with open(os.path.join(src, name), encoding='utf-8', errors='replace') as fh:
            for no, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if m and os.path.exists(os.path.join(src, m.group(1))):
                    out.append((m.group(1), no))
        return out

    inc_cache = {}

    def reached(name, seen=None):
        """Headers of src/ reached from name, each with the line of name
        that leads to it."""
        if seen is None:
            seen = set()
        if name in inc_cache:
            return inc_cache[name]
        res = {}
        for h, no in includes(name):
            if h in seen:
                continue
            seen.add(h)
            res.setdefault(h, no)
            for h2 in reached(h, seen):
                res.setdefault(h2, no)
        inc_cache[name] = res
        return res

    graph, why = {}, {}
    for c in cfiles:
        stem = c[:-2]
        graph[c] = set()
        for h, no in reached(c, set()).items():
            other = h[:-2]
            if h.endswith('.h') and h not in COMMON_HEADERS and other in stems and other != stem:
                graph[c].add(other + '.c')
                why[(c, other + '.c')] = f'src/{c}:{no}'
    for comp in cycles(graph):
        if frozenset(comp) in KNOWN_INCLUDE_CYCLES:
            continue
        edges = ', '.join(f'{why[(a, b)]} includes {b[:-2]}.h'
                          for a in comp for b in sorted(graph[a]) if b in comp)
        problem('src/' + comp[0],
                f'include cycle between {" and ".join(comp)} ({edges}): '
                'a file may include the headers of lower layers only (src/asyncmig.h)')

    # symbols: exports and use
    objs = [c[:-2] + '.o' for c in cfiles if os.path.exists(os.path.join(src, c[:-2] + '.o'))]
    if not objs:
        print('structure.py: no src/*.o (run make first): symbol checks skipped')
    else:
        defs, uses = {}, {}
        for o in objs:
            c = o[:-2] + '.c'
            out = subprocess.run(['nm', os.path.join(src, o)], capture_output=True,
                                 text=True, check=True).stdout
            uses[c] = set()
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in 'TDBRVWCG':
                    defs[parts[2]] = c
                    ok = parts[2].startswith(prefixes(c[:-2])) or LOOKED_UP.match(parts[2])
                    if not ok:
                        problem(f'src/{c}', f'exports "{parts[2]}", which is not prefixed '
                                f'{" or ".join(prefixes(c[:-2]))} (make it static, or rename it)')
                elif len(parts) == 2 and parts[0] == 'U':
                    uses[c].add(parts[1])
        sgraph = {c: {defs[s] for s in uses[c] if s in defs and defs[s] != c} for c in uses}
        for comp in cycles(sgraph):
            edges = ', '.join(f'{a} uses {sorted(s for s in uses[a] if defs.get(s) == b)[0]} of {b}'
                              for a in comp for b in sorted(sgraph[a]) if b in comp)
            problem('src/' + comp[0], f'symbol cycle between {" and ".join(comp)} ({edges})')
        so = os.path.join(tree, 'asyncmig.so')
        if os.path.exists(so):
            out = subprocess.run(['nm', '-g', '--defined-only', so], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                name = line.split()[-1]
                if name not in defs and name not in LINKER:
                    problem('asyncmig.so', f'exports "{name}", defined in no src/*.o')

    for p in problems:
        print(p)
    print(f'structure.py: {len(cfiles)} C files of src/, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
