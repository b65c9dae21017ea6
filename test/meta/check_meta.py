#!/usr/bin/env python3
"""test/meta/check_meta.py - validate META.json (PGXN Meta Spec 1.0.0).

Debian packages no PGXN validator (pgxnclient only installs), so this
checks what https://pgxn.org/spec/ requires: the required keys and the type
and form of every key the spec defines (semantic versions, license names,
prereq phases and relations, resources, no_index), that unknown top-level
keys start with "x_", and that every "provides" file exists.

It also keeps the version in one place with the control file: META.json's
version and every provides version must equal asyncmig.control's
default_version written as a semantic version ('1.1' -> 1.1.0), and so must
the upstream version of debian/changelog ('1.1'), and the install script of
that version must be reachable (asyncmig--X.sql or an update chain).

Usage: python3 test/meta/check_meta.py [REPO_DIR]   (exit 1 on a problem)
"""
import json
import os
import re
import sys

SEMVER = re.compile(
    r'^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)'
    r'(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$')
LICENSES = {
    'agpl_3', 'apache_1_1', 'apache_2_0', 'artistic_1', 'artistic_2', 'bsd',
    'freebsd', 'gfdl_1_2', 'gfdl_1_3', 'gpl_1', 'gpl_2', 'gpl_3', 'lgpl_2_1',
    'lgpl_3_0', 'mit', 'mozilla_1_0', 'mozilla_1_1', 'openssl', 'perl_5',
    'postgresql', 'qpl_1_0', 'ssleay', 'sun', 'zlib', 'open_source',
    'restricted', 'unrestricted', 'unknown'}
REQUIRED = ['name', 'abstract', 'version', 'maintainer', 'license',
            'provides', 'meta-spec']
KNOWN = set(REQUIRED) | {'description', 'generated_by', 'tags', 'no_index',
                         'prereqs', 'release_status', 'resources'}
PHASES = {'configure', 'build', 'test', 'runtime', 'develop'}
RELATIONS = {'requires', 'recommends', 'suggests', 'conflicts'}
URI = re.compile(r'^[a-z][a-z0-9+.-]*:\S+$')

errors = []


def err(msg):
    errors.append(msg)


def is_str(v):
    return isinstance(v, str) and v.strip() != ''


def check_version_range(where, v):
    # a prereq's version: 0, a semantic version, or comparisons of them
    if v == 0 or v == '0':
        return
    if not isinstance(v, str):
        err(f'{where}: version must be a string or 0, not {v!r}')
        return
    for part in v.split(','):
        part = part.strip()
        m = re.match(r'^(?:(==|!=|>=|<=|>|<)\s*)?(.*)$', part)
        if m.group(2) != '0' and not SEMVER.match(m.group(2)):
            err(f'{where}: {part!r} is not a semantic version (or a comparison of one)')


def check_meta(meta, repo):
    for k in REQUIRED:
        if k not in meta:
            err(f'missing required key "{k}"')
    for k in meta:
        if k not in KNOWN and not k.lower().startswith('x_'):
            err(f'unknown key "{k}" (custom keys start with x_)')

    name = meta.get('name')
    if not is_str(name) or len(name) < 2 or re.search(r'[\s/\\:\x00-\x1f]', name):
        err(f'name {name!r}: at least 2 characters, no spaces, slashes, backslashes or colons')
    if not is_str(meta.get('abstract')):
        err('abstract must be a non-empty string')
    if 'description' in meta and not is_str(meta['description']):
        err('description must be a non-empty string')
    if not (is_str(meta.get('version')) and SEMVER.match(meta['version'])):
        err(f'version {meta.get("version")!r} is not a semantic version (x.y.z)')

    maint = meta.get('maintainer')
    if isinstance(maint, str):
        maint = [maint]
    if not (isinstance(maint, list) and maint and all(is_str(m) for m in maint)):
        err('maintainer must be a string or a non-empty array of strings')

    lic = meta.get('license')
    if isinstance(lic, str):
        if lic not in LICENSES:
            err(f'license {lic!r} is not one of the spec\'s names')
    elif isinstance(lic, list):
        if not lic or any(x not in LICENSES for x in lic):
            err(f'license {lic!r}: every name must be one of the spec\'s names')
    elif isinstance(lic, dict):
        if not lic or any(not URI.match(str(u)) for u in lic.values()):
            err('license object: each value must be a URL')
    else:
        err('license must be a string, an array or an object')

    prov = meta.get('provides')
    if not (isinstance(prov, dict) and prov):
        err('provides must be a non-empty object')
        prov = {}
    for ext, p in prov.items():
        if not isinstance(p, dict):
            err(f'provides.{ext} must be an object')
            continue
        for k in p:
            if k not in ('file', 'version', 'abstract', 'docfile') and not k.lower().startswith('x_'):
                err(f'provides.{ext}: unknown key "{k}"')
        for k in ('file', 'version'):
            if not is_str(p.get(k)):
                err(f'provides.{ext}.{k} is required')
        if is_str(p.get('version')) and not SEMVER.match(p['version']):
            err(f'provides.{ext}.version {p["version"]!r} is not a semantic version')
        for k in ('file', 'docfile'):
            if is_str(p.get(k)) and not os.path.isfile(os.path.join(repo, p[k])):
                err(f'provides.{ext}.{k}: {p[k]} does not exist')

    ms = meta.get('meta-spec')
    if not (isinstance(ms, dict) and ms.get('version') == '1.0.0'):
        err('meta-spec must be {"version": "1.0.0", ...}')
    elif 'url' in ms and not URI.match(ms['url']):
        err('meta-spec.url must be a URL')

    pre = meta.get('prereqs', {})
    if not isinstance(pre, dict):
        err('prereqs must be an object')
        pre = {}
    for phase, rels in pre.items():
        if phase not in PHASES:
            err(f'prereqs: unknown phase "{phase}"')
            continue
        if not isinstance(rels, dict):
            err(f'prereqs.{phase} must be an object')
            continue
        for rel, reqs in rels.items():
            if rel not in RELATIONS:
                err(f'prereqs.{phase}: unknown relation "{rel}"')
                continue
            if not isinstance(reqs, dict):
                err(f'prereqs.{phase}.{rel} must be an object')
                continue
            for dep, v in reqs.items():
                check_version_range(f'prereqs.{phase}.{rel}.{dep}', v)

    if 'release_status' in meta and meta['release_status'] not in ('stable', 'testing', 'unstable'):
        err('release_status must be stable, testing or unstable')
    if 'generated_by' in meta and not is_str(meta['generated_by']):
        err('generated_by must be a string')
    tags = meta.get('tags', [])
    if not (isinstance(tags, list) and all(is_str(t) and len(t) < 256 for t in tags)):
        err('tags must be an array of strings shorter than 256 characters')
    ni = meta.get('no_index', {})
    if not isinstance(ni, dict) or any(k not in ('file', 'directory') for k in ni):
        err('no_index may only have "file" and "directory"')
    else:
        for k, v in ni.items():
            if isinstance(v, str):
                v = [v]
            if not (isinstance(v, list) and all(is_str(x) for x in v)):
                err(f'no_index.{k} must be a string or an array of strings')

    res = meta.get('resources', {})
    if not isinstance(res, dict):
        err('resources must be an object')
        res = {}
    for k, v in res.items():
        if k == 'homepage':
            if not (is_str(v) and URI.match(v)):
                err('resources.homepage must be a URL')
        elif k == 'bugtracker':
            if not (isinstance(v, dict) and v and all(kk in ('web', 'mailto') or kk.startswith('x_') for kk in v)):
                err('resources.bugtracker must be an object with web and/or mailto')
        elif k == 'repository':
            if not (isinstance(v, dict) and v and all(kk in ('url', 'web', 'type') or kk.startswith('x_') for kk in v)):
                err('resources.repository must be an object with url, web and/or type')
            elif 'url' in v and 'type' not in v:
                err('resources.repository.type is required with url')
        elif not k.lower().startswith('x_'):
            err(f'resources: unknown key "{k}"')


def semver_of(v):
    # PostgreSQL extension versions are free-form; ours are x.y or x.y.z
    parts = v.split('.')
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    return '.'.join(parts + ['0'] * (3 - len(parts)))


def check_one_version(meta, repo):
    with open(os.path.join(repo, 'asyncmig.control')) as f:
        m = re.search(r"^\s*default_version\s*=\s*'([^']+)'", f.read(), re.M)
    if not m:
        err('asyncmig.control has no default_version')
        return
    control = m.group(1)
    want = semver_of(control)
    if want is None:
        err(f'default_version {control!r} is not of the form x.y or x.y.z')
        return
    if meta.get('version') != want:
        err(f'META.json version {meta.get("version")!r} != asyncmig.control default_version {control!r} ({want})')
    for ext, p in (meta.get('provides') or {}).items():
        if isinstance(p, dict) and p.get('version') != want:
            err(f'META.json provides.{ext}.version {p.get("version")!r} != {want}')
    changelog = os.path.join(repo, 'debian', 'changelog')
    if os.path.exists(changelog):
        with open(changelog) as f:
            m = re.match(r'^\S+ \(([^)]+)\)', f.readline())
        upstream = m.group(1).split(':')[-1].rsplit('-', 1)[0] if m else None
        if upstream != control:
            err(f'debian/changelog version {upstream!r} != default_version {control!r}')
    # the default version can be installed: a full script of it, or a full
    # script of an older version and update scripts up to it
    scripts = os.listdir(repo)
    full = {s[len('asyncmig--'):-4] for s in scripts if re.match(r'^asyncmig--[^-]+\.sql$', s)}
    edges = [tuple(s[len('asyncmig--'):-4].split('--')) for s in scripts
             if re.match(r'^asyncmig--[^-]+--[^-]+\.sql$', s)]
    reach = set(full)
    while True:
        new = {b for a, b in edges if a in reach} - reach
        if not new:
            break
        reach |= new
    if control not in reach:
        err(f'no install script or update chain reaches default_version {control}')


def main():
    repo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), '..', '..'))
    try:
        with open(os.path.join(repo, 'META.json')) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        print(f'META.json: {e}')
        return 1
    if not isinstance(meta, dict):
        print('META.json: not a JSON object')
        return 1
    check_meta(meta, repo)
    check_one_version(meta, repo)
    for e in errors:
        print(f'META.json: {e}')
    if errors:
        return 1
    print(f'META.json: valid (PGXN Meta Spec 1.0.0), version {meta["version"]} '
          f'= asyncmig.control default_version = debian/changelog')
    return 0


if __name__ == '__main__':
    sys.exit(main())
