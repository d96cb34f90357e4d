#!/usr/bin/env python3
"""Writes the client API reference (docs/client-api.md) from the public headers' comments, so
that the reference is the headers and cannot drift from them.

    scripts/header-doc.py OUT.md HEADER...          write OUT.md
    scripts/header-doc.py --check OUT.md HEADER...  fail (exit 1) when OUT.md is not current

Every declaration (function, type, macro) is shown with the comment right before it; a
comment of the form "==== Title ====" (a banner) starts a section; the comment opening a file
introduces it. Standard library only; run by ctest (unit/client-api-doc) in --check mode."""

import os
import re
import sys

BANNER = re.compile(r'^=+\s*\n\s*(.+?)\s*\n\s*=+\s*$', re.S)


def comment_text(raw):
    """The text of a /* ... */ comment, its leading asterisks and indentation removed."""
    body = raw[2:-2]
    lines = [re.sub(r'^\s*\* ?', '', l) for l in body.split('\n')]
    return '\n'.join(l.rstrip() for l in lines).strip()


def blocks(text):
    """('comment', text) and ('code', text) in file order; code is one top-level declaration
    (up to its ';' outside braces), one preprocessor line (with continuations) or one
    function-like macro."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith('/*', i):
            j = text.index('*/', i) + 2
            yield 'comment', text[i:j]
            i = j
        elif text[i] == '#':
            j = i
            while True:
                k = text.find('\n', j)
                if k < 0:
                    k = n
                if text[j:k].rstrip().endswith('\\'):
                    j = k + 1
                    continue
                break
            yield 'pre', text[i:k]
            i = k
        elif text[i].isspace():
            i += 1
        else:
            depth, j = 0, i
            while j < n:
                if text.startswith('/*', j):
                    j = text.index('*/', j) + 2
                    continue
                c = text[j]
                if c == '{':
                    depth += 1
                elif c == '}':
                    depth -= 1
                elif c == ';' and depth == 0:
                    j += 1
                    break
                j += 1
            yield 'code', text[i:j]
            i = j


def name_of(kind, code):
    """What a declaration declares, for its heading."""
    if kind == 'pre':
        m = re.match(r'#\s*define\s+(\w+)', code)
        return m.group(1) if m else None
    flat = re.sub(r'/\*.*?\*/', '', code, flags=re.S)
    m = re.search(r'}\s*(\w+)\s*;\s*$', flat)  # typedef struct {...} name;
    if m:
        return m.group(1)
    m = re.search(r'\(\s*\*\s*(\w+)\s*\)\s*\(', flat)  # typedef of a function pointer
    if m and flat.lstrip().startswith('typedef'):
        return m.group(1)
    m = re.search(r'(\w+)\s*\(', flat)  # a function
    if m:
        return m.group(1) + '()'
    m = re.search(r'(\w+)\s*;\s*$', flat)  # typedef struct x x;
    return m.group(1) if m else None


def render(header_path, root):
    with open(header_path, encoding='utf-8') as f:
        text = f.read()
    rel = os.path.relpath(header_path, root)
    out = ['## `%s`' % rel, '']
    pending = None  # the comment waiting for its declaration
    first = True
    for kind, chunk in blocks(text):
        if kind == 'comment':
            body = comment_text(chunk)
            if first:
                out += [body, '']
                first = False
                continue
            m = BANNER.match(body)
            if m:
                out += ['### %s' % m.group(1), '']
                pending = None
                continue
            if pending is not None:
                out += [pending, '']  # a comment of its own, between declarations
            pending = body
            continue
        first = False
        if kind == 'pre' and re.match(r'#\s*(ifndef|endif|include|define\s+HEARTH_\w+_H\b)', chunk):
            pending = None
            continue
        name = name_of(kind, chunk)
        out += ['#### `%s`' % (name or chunk.split('\n')[0]), '', '```c', chunk.strip(), '```', '']
        if pending:
            out += [pending, '']
        pending = None
    if pending:
        out += [pending, '']
    return out


def main(argv):
    check = argv[:1] == ['--check']
    if check:
        argv = argv[1:]
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    out_path, headers = argv[0], argv[1:]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lines = ['# libhearth client API reference', '',
             'Generated from the public headers by `scripts/header-doc.py`; do not edit by hand '
             '(ctest `unit/client-api-doc` fails when this file is not current). The tutorial '
             'is [client.md](client.md).', '']
    for h in headers:
        lines += render(h, root)
    text = '\n'.join(lines).rstrip('\n') + '\n'
    if check:
        try:
            with open(out_path, encoding='utf-8') as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            sys.stderr.write('%s is not current: run python3 scripts/header-doc.py %s %s\n'
                             % (out_path, out_path, ' '.join(headers)))
            return 1
        return 0
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
