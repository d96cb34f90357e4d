#!/usr/bin/python3
"""Man pages from the tables the programs print: a template of prose (docs/man/*.in) around the
program's own --help, turned into roff, and for hearthd.conf(5) the config table as
`hearthd --config-doc` prints it. Run by the build (CMake), so a page can never describe other
options than the binary it ships with.

    manpage.py TEMPLATE OUT VERSION [--help-of PROGRAM] [--config-of HEARTHD]
"""

import argparse
import re
import subprocess
import sys

GAP = re.compile(r'\S( {2,})\S')   # a term, two or more spaces, its description
OPTION = re.compile(r'(?<![\w\\])(--?[A-Za-z][\w-]*)')


def esc(text):
    """Roff-safe text: backslashes shown as such, options with real minus signs."""
    text = text.replace('\\', '\\e')
    return OPTION.sub(lambda m: m.group(1).replace('-', '\\-'), text)


def line(text):
    """A text line that cannot be read as a request."""
    return '\\&' + text if text[:1] in ('.', "'") else text


def term(text):
    """An entry's term: options in bold, upper-case placeholders in italics."""
    out = []
    for word in re.split(r'(\s+)', text):
        if word.startswith('-'):
            head, tail = re.match(r'([-\w]+)(.*)', word).groups()
            out.append('\\fB%s\\fR%s' % (esc(head), esc(tail)))
        elif re.fullmatch(r'\[?[A-Z][A-Z_]+\]?\.*', word) and len(word.strip('[].')) > 1:
            out.append('\\fI%s\\fR' % esc(word))
        else:
            out.append(esc(word))
    return ''.join(out)


def indent(s):
    return len(s) - len(s.lstrip(' '))


def help_to_roff(text):
    """The --help conventions of Hearth's programs: 'usage:' lines become the synopsis; a line
    alone at column 0 in capitals or ending with ':' a section; 'TERM  description' lines (two
    spaces or more between) with their deeper continuation lines an entry; a line followed by
    a much deeper one a term whose description is below; deeper lines after a paragraph an
    example; anything else a paragraph."""
    lines = text.rstrip('\n').split('\n')
    out = []
    i = 0
    section = None
    after_usage = False  # the synopsis came from 'usage:', not from a heading
    prev = None  # kind of the block before: 'para', 'entry', ...

    def open_section(name):
        nonlocal section
        if section != name:
            out.append('.SH %s' % name)
            section = name

    while i < len(lines):
        s = lines[i]
        if not s.strip():
            i += 1
            prev = 'blank' if prev != 'entry' else 'entry'
            continue
        ind = indent(s)
        body = s.strip()
        if ind == 0 and body.startswith('usage:'):
            open_section('SYNOPSIS')
            after_usage = True
            block = [body[len('usage:'):].strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and indent(lines[i]) > 0:
                block.append(lines[i].strip())
                i += 1
            out.append('.nf')
            out += [line(esc(b)) for b in block]
            out.append('.fi')
            prev = 'usage'
            continue
        if ind == 0 and (re.fullmatch(r'[A-Z][A-Z ]+', body) or re.fullmatch(r'[a-z][a-z ]*:', body)):
            open_section(body.rstrip(':').upper())
            after_usage = False
            i += 1
            prev = 'heading'
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ''
        gap = GAP.search(body)
        deeper_next = nxt.strip() and indent(nxt) >= ind + 8
        if ind > 0 and (gap and gap.start(1) <= 48 or deeper_next and not gap):
            if section in (None, 'DESCRIPTION') or after_usage:
                open_section('OPTIONS')
                after_usage = False
            if gap:
                tag, desc = body[:gap.start(1)], [body[gap.end(1):]]
            else:
                tag, desc = body, []
            i += 1
            while i < len(lines) and lines[i].strip() and indent(lines[i]) > ind:
                desc.append(lines[i].strip())
                i += 1
            out.append('.TP')
            out.append(line(term(tag)))
            out += [line(esc(d)) for d in desc] or ['\\&']
            prev = 'entry'
            continue
        if prev == 'para' and ind > 0 and ind >= para_indent + 4:
            block = []
            while i < len(lines) and lines[i].strip() and indent(lines[i]) >= ind:
                block.append(lines[i][ind:])
                i += 1
            out += ['.RS', '.nf'] + [line(esc(b)) for b in block] + ['.fi', '.RE']
            prev = 'example'
            continue
        if section is None or after_usage:
            open_section('DESCRIPTION')
            after_usage = False
        if section == 'NAME':  # 'prog - what it is', as whatis(1) reads it
            out.append(line(esc(body).replace(' - ', ' \\- ', 1)))
            i += 1
            prev = 'name'
            continue
        if prev != 'para':
            out.append('.PP')
        para_indent = ind
        while i < len(lines) and lines[i].strip() and indent(lines[i]) == ind \
                and not (ind > 0 and GAP.search(lines[i].strip())):
            out.append(line(esc(lines[i].strip())))
            i += 1
        prev = 'para'
    return '\n'.join(out)


def config_to_roff(markdown):
    """The rows of `hearthd --config-doc`, one entry per key under a subsection per INI
    section."""
    out = []
    section = None
    for row in markdown.split('\n'):
        if not row.startswith('| `'):
            continue
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', row)[1:-1]]
        key, typ, default, allowed, runtime, desc = cells
        unmd = lambda s: s.replace('\\|', '|').replace('&lt;', '<').replace('&gt;', '>').strip('`')
        key = unmd(key)
        sec, name = key.split('.', 1)
        if sec != section:
            out += ['.SS [%s]' % sec]
            section = sec
        facts = [typ]
        if unmd(allowed) and typ != 'string' and typ != 'boolean':
            facts.append(unmd(allowed).replace(' .. ', '..'))
        facts.append('default %s' % unmd(default))
        if runtime == 'yes':
            facts.append('runtime')
        out += ['.TP', '\\fB%s\\fR (%s)' % (esc(name), esc('; '.join(facts))),
                line(esc(unmd(desc)))]
    if not out:
        sys.exit('manpage.py: no keys in the config reference')
    return '\n'.join(out)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit('manpage.py: %s failed (%d): %s' % (' '.join(cmd), r.returncode, r.stderr))
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('template')
    ap.add_argument('out')
    ap.add_argument('version')
    ap.add_argument('--help-of')
    ap.add_argument('--config-of')
    a = ap.parse_args()
    with open(a.template, encoding='utf-8') as f:
        page = f.read()
    page = page.replace('@VERSION@', a.version)
    if a.help_of:
        page = page.replace('@HELP@', help_to_roff(run([a.help_of, '--help'])))
    if a.config_of:
        page = page.replace('@CONFIG@', config_to_roff(run([a.config_of, '--config-doc'])))
    left = re.findall(r'@[A-Z]+@', page)
    if left:
        sys.exit('manpage.py: %s: nothing to put in %s' % (a.template, ', '.join(left)))
    with open(a.out + '.tmp', 'w', encoding='utf-8') as f:
        f.write(page)
    import os
    os.replace(a.out + '.tmp', a.out)


if __name__ == '__main__':
    main()
