#!/usr/bin/python3
"""Writes server/admin/openapi.inc (the OpenAPI document as one C string, compiled into api.c)
from server/admin/openapi.json, the document as it is edited. Run after changing the JSON:
    python3 scripts/openapi-inc.py
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, 'server', 'admin', 'openapi.json')
OUT = os.path.join(ROOT, 'server', 'admin', 'openapi.inc')


def main():
    with open(SRC, encoding='utf-8') as f:
        doc = json.load(f)
    text = json.dumps(doc, separators=(',', ':'), ensure_ascii=True)
    esc = text.replace('\\', '\\\\').replace('"', '\\"')
    lines = ['/* The OpenAPI 3 document of /api/v1/ (api.c), as one C string. Generated from\n'
             ' * openapi.json by scripts/openapi-inc.py; do not edit by hand. */\n']
    step = 96
    i = 0
    while i < len(esc):
        j = min(i + step, len(esc))
        while esc[j - 1] == '\\' and (j - i) > 1 and esc[i:j].endswith('\\') and \
                (len(esc[i:j]) - len(esc[i:j].rstrip('\\'))) % 2 == 1:
            j -= 1
        lines.append('    "%s"\n' % esc[i:j])
        i = j
    with open(OUT, 'w', encoding='utf-8') as f:
        f.writelines(lines)


if __name__ == '__main__':
    main()
