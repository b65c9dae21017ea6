#!/usr/bin/env python3
"""test/docs/check_docs.py - every runnable example of the documentation
runs, and every relative link between its pages leads somewhere.

Pages: README.md, CONTRIBUTING.md, CHANGELOG.md, docs/**/*.md and
python/README-django.md (those that exist).

Examples (fenced code blocks, by their info string):

  ```sql runnable      executed, block after block in page order, by one
                       psql (-X -q, ON_ERROR_STOP) as a superuser on a fresh
                       database per page in which CREATE EXTENSION asyncmig
                       is done.  Inside an HTML comment <!-- ... --> it is a
                       hidden setup block, executed too.  Each statement
                       ends with ";" (or is a backslash command).
  ```text output       right after a `sql runnable` block (only blank lines
                       between): what that block prints, errors and notices
                       included, compared as pg_regress compares (line by
                       line, white space ignored); "..." inside a line
                       matches any text (volatile values), a line that is
                       only "..." matches any number of lines.  An output
                       with an "ERROR:" line says that the block fails: it
                       runs without ON_ERROR_STOP.
  ```python runnable   compiled, and its imports executed by AM_PYTHON
                       (default /usr/bin/python3) with PYTHONPATH=python and
                       Django configured (settings.configure() with the
                       asyncmig.django app, an in-memory SQLite database);
                       a module that no package on the path provides (the
                       reader's own project, "myapp.models") is not looked
                       for.  If every import is there, the whole block runs
                       too (as a module named docs_example), so a renamed
                       argument fails it.

Links: [text](target), ![alt](target), [ref]: target and href="..."/
src="..." outside code; a relative target must exist, and its #anchor (or a
page's own #anchor) must be a heading of the target page (GitHub's slugs:
lower case, punctuation dropped, spaces to "-", "-1", "-2"... for repeats)
or an <a name/id> there.

A failure names the page and the line of its block or link.

Usage: check_docs.py [--links-only] [TREE]
  The SQL examples need PGHOST/PGPORT (and PGUSER, a superuser) of a running
  server that preloads asyncmig (test/docs/run.sh starts one).
Python 3 standard library only.  Exit 1 if anything failed.
"""
import ast
import difflib
import json
import os
import re
import subprocess
import sys

FENCE = re.compile(r'^(\s*)(`{3,}|~{3,})\s*([^`]*?)\s*$')
ATX = re.compile(r'^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$')
SETEXT = re.compile(r'^\s{0,3}(=+|-+)\s*$')
INLINE_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+(?:"[^"]*"|\'[^\']*\'))?\s*\)')
REF_DEF = re.compile(r'^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$')
HTML_REF = re.compile(r'\b(?:href|src)\s*=\s*"([^"]*)"')
HTML_ANCHOR = re.compile(r'<a\s[^>]*\b(?:name|id)\s*=\s*"([^"]+)"', re.I)
CODE_SPAN = re.compile(r'(`+)(.+?)\1')
CODE_SPAN_S = re.compile(r'(`+)(.+?)\1', re.S)
SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')

PAGE_TIMEOUT = int(os.environ.get('AM_DOCS_PAGE_TIMEOUT', '120'))

failures = []


def fail(page, line, msg):
    failures.append(f'{page}:{line}: {msg}')


def pages_of(tree):
    out = []
    for p in ('README.md', 'CONTRIBUTING.md', 'CHANGELOG.md'):
        if os.path.isfile(os.path.join(tree, p)):
            out.append(p)
    docs = os.path.join(tree, 'docs')
    for root, dirs, files in os.walk(docs):
        dirs.sort()
        for f in sorted(files):
            if f.endswith('.md'):
                out.append(os.path.relpath(os.path.join(root, f), tree))
    if os.path.isfile(os.path.join(tree, 'python', 'README-django.md')):
        out.append('python/README-django.md')
    return out


class Block:
    def __init__(self, info, line, text, hidden):
        self.info = info.split()
        self.line = line        # 1-based line of the opening fence
        self.text = text
        self.hidden = hidden    # inside an HTML comment
        self.end = None         # 1-based line of the closing fence
        self.output = None      # the `text output` block that follows


def parse(lines):
    """The fenced blocks of a page, and the lines outside code and HTML
    comments (number, text) where links and headings are."""
    blocks, prose = [], []
    in_comment = False
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m:
            indent, fence, info = len(m.group(1)), m.group(2), m.group(3)
            body, j = [], i + 1
            while j < len(lines):
                c = re.match(r'^\s*(' + re.escape(fence[0]) + '{%d,})\\s*$' % len(fence), lines[j])
                if c:
                    break
                l = lines[j]
                # strip the fence's indentation, as CommonMark does
                k = 0
                while k < indent and k < len(l) and l[k] == ' ':
                    k += 1
                body.append(l[k:])
                j += 1
            b = Block(info, i + 1, '\n'.join(body) + ('\n' if body else ''), in_comment)
            b.end = j + 1
            blocks.append(b)
            i = j + 1
            continue
        if in_comment:
            if '-->' in line:
                in_comment = False
                rest = line.split('-->', 1)[1]
                if '<!--' in rest and '-->' not in rest.split('<!--', 1)[1]:
                    in_comment = True
        else:
            visible = re.sub(r'<!--.*?-->', '', line)
            if '<!--' in visible:
                in_comment = True
                visible = visible.split('<!--', 1)[0]
            prose.append((i + 1, visible))
        i += 1
    # a `text output` block right after a block (blank lines between)
    for a, b in zip(blocks, blocks[1:]):
        if b.info[:2] == ['text', 'output'] and b.hidden == a.hidden and \
                all(not lines[k].strip() for k in range(a.end, b.line - 1)):
            a.output = b
    return blocks, prose


# ---- links and anchors

def plain_heading(text):
    """The text GitHub renders for a heading's source."""
    spans = []

    def keep(m):
        spans.append(m.group(2).strip())
        return f'\x00{len(spans) - 1}\x00'
    t = CODE_SPAN.sub(keep, text)
    t = re.sub(r'!\[([^\]]*)\]\([^)]*\)', r'\1', t)
    t = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', t)
    t = re.sub(r'\[([^\]]*)\]\[[^\]]*\]', r'\1', t)
    t = re.sub(r'<[^>]+>', '', t)
    t = t.replace('*', '')
    t = re.sub(r'(?<!\w)_+(.+?)_+(?!\w)', r'\1', t)
    t = re.sub(r'\\(.)', r'\1', t)
    return re.sub('\x00(\\d+)\x00', lambda m: spans[int(m.group(1))], t)


def slug(text):
    s = plain_heading(text).strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


_anchor_cache = {}


def anchors_of(path):
    if path in _anchor_cache:
        return _anchor_cache[path]
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    _, prose = parse(lines)
    found, seen = set(), {}
    prev = None
    for no, text in prose:
        heading = None
        m = ATX.match(text)
        if m:
            heading = m.group(2)
        elif prev is not None and SETEXT.match(text) and prev[1].strip() and prev[0] == no - 1 \
                and not ATX.match(prev[1]):
            heading = prev[1].strip()
        if heading is not None:
            base = slug(heading)
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f'{base}-{n}')
        for a in HTML_ANCHOR.findall(text):
            found.add(a)
        prev = (no, text)
    _anchor_cache[path] = found
    return found


def paragraphs(prose):
    """The prose as paragraphs (a link's text may wrap): (first line, text)."""
    out, start, buf, prev = [], None, [], None
    for no, text in prose:
        if not text.strip() or (prev is not None and no != prev + 1):
            if buf:
                out.append((start, '\n'.join(buf)))
            buf, start = [], None
        if text.strip():
            if start is None:
                start = no
            buf.append(text)
        prev = no
    if buf:
        out.append((start, '\n'.join(buf)))
    return out


def check_links(tree, page, prose):
    """Check the relative links of a page; return how many there are."""
    n = 0
    here = os.path.dirname(os.path.join(tree, page))
    found = []
    for first, para in paragraphs(prose):
        # code spans (which may wrap too) hold no links: blank them, keeping
        # the line breaks
        t = CODE_SPAN_S.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), para)
        for m in list(INLINE_LINK.finditer(t)) + list(HTML_REF.finditer(t)):
            found.append((first + t.count('\n', 0, m.start(1)), m.group(1)))
        for k, line in enumerate(t.split('\n')):
            m = REF_DEF.match(line)
            if m:
                found.append((first + k, m.group(1)))
    for no, target in sorted(found):
        if not target or SCHEME.match(target) or target.startswith('//'):
            continue
        n += 1
        path, _, anchor = target.partition('#')
        path = re.sub(r'%20', ' ', path.split('?', 1)[0])
        if path:
            full = os.path.normpath(os.path.join(tree, path.lstrip('/')) if path.startswith('/')
                                    else os.path.join(here, path))
            if not full.startswith(os.path.abspath(tree) + os.sep) and full != os.path.abspath(tree):
                fail(page, no, f'link "{target}" leads out of the repository')
                continue
            if not os.path.exists(full):
                fail(page, no, f'link "{target}": {os.path.relpath(full, tree)} does not exist')
                continue
        else:
            full = os.path.join(tree, page)
        if anchor and full.endswith('.md') and os.path.isfile(full):
            if anchor not in anchors_of(full):
                near = difflib.get_close_matches(anchor, sorted(anchors_of(full)), 1)
                fail(page, no, f'link "{target}": no heading of {os.path.relpath(full, tree)} '
                     f'has the anchor #{anchor}' + (f' (#{near[0]}?)' if near else ''))
    return n


# ---- SQL examples

def pattern_of(expected_line):
    parts = [re.escape(re.sub(r'\s+', '', p)) for p in expected_line.split('...')]
    return re.compile('.*'.join(parts) + r'\Z', re.S)


def matches(expected, actual):
    """pg_regress's comparison (diff -w), with "..." wildcards."""
    def rec(i, j):
        while i < len(expected):
            if expected[i].strip() == '...':
                return any(rec(i + 1, k) for k in range(j, len(actual) + 1))
            if j >= len(actual) or not pattern_of(expected[i]).match(re.sub(r'\s+', '', actual[j])):
                return False
            i += 1
            j += 1
        return j == len(actual)
    return rec(0, 0)


def trim(lines):
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return lines


def unterminated(sql):
    """True if the last statement of a block does not end with ";"."""
    last = ''
    in_block_comment = False
    for line in sql.split('\n'):
        s = line.strip()
        if in_block_comment:
            if '*/' in s:
                in_block_comment = False
                s = s.split('*/', 1)[1].strip()
            else:
                continue
        if s.startswith('/*') and '*/' not in s:
            in_block_comment = True
            continue
        s = re.sub(r'\s*--.*$', '', s) if not s.startswith('\\') else s
        if s:
            last = s
    return bool(last) and not last.startswith('\\') and not last.endswith(';')


def dbname_of(page):
    return ('docs_' + re.sub(r'[^a-z0-9]+', '_', page.lower()[:-3]))[:63]


def psql(db, script, timeout):
    cmd = ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db]
    return subprocess.run(cmd, input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def run_sql(tree, page, blocks):
    db = dbname_of(page)
    r = psql('postgres', f'DROP DATABASE IF EXISTS "{db}";\nCREATE DATABASE "{db}";\n', 60)
    if r.returncode != 0:
        fail(page, 1, f'could not create database {db}: {r.stdout.strip()}')
        return
    r = psql(db, 'CREATE EXTENSION asyncmig;\n', 60)
    if r.returncode != 0:
        fail(page, 1, f'CREATE EXTENSION asyncmig failed: {r.stdout.strip()}')
        return
    script = []
    for n, b in enumerate(blocks):
        if unterminated(b.text):
            fail(page, b.line, 'the last statement of this block does not end with ";"')
            return
        expects_error = b.output is not None and any(
            re.match(r'^\s*(ERROR|FATAL):', l) for l in b.output.text.split('\n'))
        script.append(f"\\echo '@@docscheck {n}@@'\n")
        if expects_error:
            script.append('\\set ON_ERROR_STOP 0\n')
        script.append(b.text)
        if expects_error:
            script.append('\\set ON_ERROR_STOP 1\n')
    script.append("\\echo '@@docscheck end@@'\n")
    try:
        r = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db],
                           input=''.join(script), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=PAGE_TIMEOUT, cwd=tree)
        out, rc = r.stdout, r.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        rc = 'timeout'
    # the output of each block, between the markers
    outputs, current = {}, None
    for line in out.split('\n'):
        m = re.match(r'^@@docscheck (\d+|end)@@$', line)
        if m:
            current = m.group(1)
            outputs[current] = []
        elif current is not None:
            outputs[current].append(line)
    for n, b in enumerate(blocks):
        got = outputs.get(str(n))
        if got is None:
            break
        last = str(n + 1) not in outputs and 'end' not in outputs
        if last and rc != 0:
            what = f'did not end within {PAGE_TIMEOUT} s' if rc == 'timeout' else 'failed'
            fail(page, b.line, f'this {"hidden " if b.hidden else ""}sql runnable block {what}:\n'
                 + '\n'.join('    ' + l for l in trim(got)))
            return
        if b.output is not None:
            want = trim(b.output.text.split('\n'))
            got = trim(got)
            if not matches(want, got):
                diff = difflib.unified_diff(want, got, f'{page}:{b.output.line} (expected)',
                                            'psql', lineterm='', n=2)
                fail(page, b.line, 'the output of this block differs from the page:\n'
                     + '\n'.join('    ' + l for l in diff))
    if rc != 0 and 'end' not in outputs:
        fail(page, blocks[0].line, f'psql failed before the first block: {out.strip()}')
    psql('postgres', f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE);\n', 60)


# ---- Python examples

PY_DRIVER = r'''
import importlib.util, json, sys, traceback
job = json.loads(sys.argv[1])
try:
    import django
    from django.conf import settings
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                        "django.contrib.admin", "asyncmig.django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SECRET_KEY="docs", USE_TZ=True)
    django.setup()
except ImportError:
    pass
results, skipped = [], False
for line, stmt, top in job["imports"]:
    try:
        found = importlib.util.find_spec(top) is not None
    except Exception:
        found = False
    if not found:
        skipped = True
        continue
    try:
        exec(stmt, {})
    except Exception as e:
        results.append([line, f'"{stmt}" fails: {type(e).__name__}: {e}'])
ran = False
if not skipped and not results:
    # every import is there: run the whole block (a renamed argument, a
    # wrong call fails here)
    ran = True
    try:
        exec(compile("\n" * job["offset"] + job["code"], job["page"], "exec"),
             {"__name__": "docs_example"})
    except BaseException as e:
        line = job["offset"] + 1
        for frame, no in traceback.walk_tb(e.__traceback__):
            if frame.f_code.co_filename == job["page"]:
                line = no
        results.append([line, f"the block fails: {type(e).__name__}: {e}"])
print(json.dumps({"results": results, "ran": ran}))
'''


def check_python(tree, page, block):
    """Compile a python runnable block and run its imports; if they are
    all there (none of the reader's project), run the whole block.
    Returns True if the whole block ran."""
    base = block.line  # the code's line 1 is the page's line base + 1
    try:
        code = ast.parse('\n' * base + block.text, filename=page)
    except SyntaxError as e:
        fail(page, e.lineno or block.line, f'python runnable block: {e.msg}')
        return False
    imports = []
    for node in ast.walk(code):
        if isinstance(node, ast.Import):
            for a in node.names:
                imports.append([node.lineno, f'import {a.name}' + (f' as {a.asname}' if a.asname else ''),
                                a.name.split('.')[0]])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                imports.append([node.lineno, '(relative import)', '.'])
                continue    # relative: part of the reader's project
            names = ', '.join(a.name + (f' as {a.asname}' if a.asname else '') for a in node.names)
            imports.append([node.lineno, f'from {node.module} import {names}',
                            node.module.split('.')[0]])
    pypath = os.path.join(tree, 'python')
    if not os.path.isdir(pypath):   # the self-test's pages: this checkout's
        pypath = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'python')
    env = dict(os.environ, PYTHONPATH=pypath)
    env.pop('DJANGO_SETTINGS_MODULE', None)
    py = os.environ.get('AM_PYTHON', '/usr/bin/python3')
    job = {'imports': imports, 'code': block.text, 'page': page, 'offset': base}
    try:
        # in python/: with the checkout as the working directory, a built
        # asyncmig.so there would be "import asyncmig"
        r = subprocess.run([py, '-c', PY_DRIVER, json.dumps(job)], capture_output=True,
                           text=True, env=env, timeout=60, cwd=pypath)
    except subprocess.TimeoutExpired:
        fail(page, block.line, 'python runnable block: did not end within 60 s')
        return False
    if r.returncode != 0:
        fail(page, block.line, f'python runnable block: the check failed: {r.stderr.strip()}')
        return False
    res = json.loads(r.stdout)
    for line, msg in res['results']:
        fail(page, line, msg)
    return res['ran']


def main():
    args = sys.argv[1:]
    links_only = '--links-only' in args
    args = [a for a in args if a != '--links-only']
    expect = None
    if len(args) >= 2 and args[0] == '--expect':
        expect = args[1]
        args = args[2:]
    tree = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), '..', '..'))
    counts = {'pages': 0, 'links': 0, 'sql': 0, 'outputs': 0, 'python': 0, 'python_run': 0}
    for page in pages_of(tree):
        counts['pages'] += 1
        with open(os.path.join(tree, page), encoding='utf-8') as fh:
            lines = fh.read().split('\n')
        blocks, prose = parse(lines)
        before = len(failures)
        counts['links'] += check_links(tree, page, prose)
        sql = [b for b in blocks if b.info[:2] == ['sql', 'runnable']]
        py = [b for b in blocks if b.info[:2] == ['python', 'runnable']]
        for b in blocks:
            if b.info[:2] == ['text', 'output'] and not any(s.output is b for s in sql):
                fail(page, b.line, 'a "text output" block that follows no "sql runnable" block')
        counts['sql'] += len(sql)
        counts['outputs'] += sum(1 for b in sql if b.output is not None)
        counts['python'] += len(py)
        if sql and not links_only:
            run_sql(tree, page, sql)
        if not links_only:
            for b in py:
                counts['python_run'] += bool(check_python(tree, page, b))
        status = 'ok' if len(failures) == before else 'FAILED'
        print(f'{page}: {len(sql)} sql, {len(py)} python blocks: {status}')
    for f in failures:
        print(f)
    print(f'check_docs.py: {counts["pages"]} pages, {counts["links"]} relative links, '
          f'{counts["sql"]} sql blocks '
          f'({counts["outputs"]} with output), {counts["python"]} python blocks ({counts["python_run"]} run whole)'
          f'{" (not run: --links-only)" if links_only else ""}; {len(failures)} failure(s)')
    if expect is not None:
        return self_test(expect)
    return 1 if failures else 0


def self_test(path):
    """--expect FILE: the failures (their first lines) must be those of
    FILE, one a line, in any order ("..." matches any text)."""
    with open(path, encoding='utf-8') as fh:
        want = [l for l in fh.read().split('\n') if l.strip()]
    got = [f.split('\n', 1)[0] for f in failures]
    missing = [w for w in want if not any(matches([w], [g]) for g in got)]
    extra = [g for g in got if not any(matches([w], [g]) for w in want)]
    for w in missing:
        print(f'self-test: this failure was not reported: {w}')
    for g in extra:
        print(f'self-test: this failure was not expected: {g}')
    ok = not missing and not extra and len(got) == len(want)
    print(f'self-test of check_docs.py on {path}: {"ok" if ok else "FAILED"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
