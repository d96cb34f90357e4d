"""The layering of the source tree, checked on every `make test`: includes and links point
only down (lib < storage < core < net < c2s, modules beside c2s, admin over net and
modules; the program on top), no
include cycle spans two folders, no module reaches a stream or a connection, and the router
names no module. Run by ctest with the build directory as argument (for the link check)."""

import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(ROOT, 'build')

# Each folder and the include prefixes it may use (its own and those below it).
ALLOWED = {
    'include/hearth': {'hearth'},
    'lib': {'hearth', 'lib'},
    'server/storage': {'hearth', 'storage'},
    'server/core': {'hearth', 'storage', 'core'},
    'server/net': {'hearth', 'storage', 'core', 'net'},
    'server/c2s': {'hearth', 'storage', 'core', 'net', 'c2s'},
    'server/modules': {'hearth', 'storage', 'core', 'modules'},
    'server/admin': {'hearth', 'storage', 'core', 'net', 'modules', 'admin'},
}
MODULE_NAMES = ('muc', 'mam', 'carbons', 'blocking', 'presence', 'message', 'roster', 'vcard',
                'private', 'register', 'last', 'misc', 'disco', 'caps', 'pep', 'pubsub')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    """(folder, path) of every C source and header under the checked folders."""
    for folder in ALLOWED:
        base = os.path.join(ROOT, folder)
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in os.walk(base):
            for f in files:
                if f.endswith(('.c', '.h')):
                    yield folder, os.path.join(dirpath, f)


def includes(path):
    with open(path, encoding='utf-8') as f:
        return INCLUDE.findall(f.read())


def prefix_of(inc):
    """The layer an include names: 'core' for "core/router.h"; 'lib' for lib-local ones."""
    head = inc.split('/')[0]
    return head if '/' in inc else 'lib'


def resolve(folder, path, inc):
    """The file an include names, when it is one of ours."""
    for cand in (os.path.join(os.path.dirname(path), inc), os.path.join(ROOT, 'include', inc),
                 os.path.join(ROOT, 'server', inc), os.path.join(ROOT, 'lib', inc)):
        if os.path.isfile(cand):
            return os.path.normpath(cand)
    return None


class LayeringTest(unittest.TestCase):
    def test_includes_point_down(self):
        bad = []
        for folder, path in sources():
            for inc in includes(path):
                layer = prefix_of(inc)
                if folder == 'lib' and '/' in inc and layer not in ('hearth', 'xml'):
                    bad.append((path, inc))
                elif folder != 'lib' and layer not in ALLOWED[folder]:
                    bad.append((path, inc))
        self.assertEqual(bad, [], 'includes pointing up or across: %s' % bad)

    def test_no_module_reaches_a_stream_or_connection(self):
        bad = [(p, i) for f, p in sources() if f == 'server/modules' for i in includes(p)
               if i.startswith(('c2s/', 'net/'))]
        self.assertEqual(bad, [])

    def test_no_include_cycle_spans_two_folders(self):
        graph = {}
        folder_of = {}
        for folder, path in sources():
            p = os.path.normpath(path)
            folder_of[p] = os.path.dirname(p)
            graph[p] = [r for r in (resolve(folder, path, i) for i in includes(path)) if r]
        # Tarjan's strongly connected components, iteratively.
        index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
        for root in graph:
            if root in index:
                continue
            work = [(root, iter(graph.get(root, ())))]
            index[root] = low[root] = counter[0]
            counter[0] += 1
            stack.append(root)
            on.add(root)
            while work:
                node, it = work[-1]
                nxt = next(it, None)
                if nxt is None:
                    work.pop()
                    if work:
                        low[work[-1][0]] = min(low[work[-1][0]], low[node])
                    if low[node] == index[node]:
                        comp = []
                        while True:
                            x = stack.pop()
                            on.discard(x)
                            comp.append(x)
                            if x == node:
                                break
                        sccs.append(comp)
                elif nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
        spanning = [c for c in sccs if len({folder_of.get(p, os.path.dirname(p)) for p in c}) > 1]
        self.assertEqual(spanning, [], 'include cycles across folders: %s' % spanning)

    def test_router_names_no_module(self):
        with open(os.path.join(ROOT, 'server/core/router.c'), encoding='utf-8') as f:
            text = f.read()
        named = re.findall(r'\b(?:%s)__\w+' % '|'.join(MODULE_NAMES), text)
        self.assertEqual(named, [])
        self.assertNotIn('modules/', text)

    def defined_and_undefined(self, lib):
        path = os.path.join(BUILD, lib)
        if not os.path.exists(path):
            self.skipTest('%s is not built' % lib)
        out = subprocess.run(['nm', '-g', path], capture_output=True, text=True, check=True).stdout
        defined, undefined = set(), set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == 'U':
                undefined.add(parts[1])
            elif len(parts) == 3 and parts[1] in 'TDBRC':
                defined.add(parts[2])
        return defined, undefined - defined

    def test_links_point_down(self):
        lower = ['libhearth_base.a', 'libhearth_jid.a', 'libhearth_xml.a', 'libhearth_tls.a',
                 'libhearth_sasl.a', 'libhearth_form.a', 'libhearth_client.a', 'libhearth_storage.a',
                 'libhearth_config.a']
        server = ['libhearthd_core.a', 'libhearthd_net.a', 'libhearthd_c2s.a', 'libhearthd_modules.a',
                  'libhearthd_admin.a']
        layers = [('libhearthd_core.a', server[1:]),
                  ('libhearthd_net.a', ['libhearthd_c2s.a', 'libhearthd_modules.a',
                                        'libhearthd_admin.a']),
                  ('libhearthd_c2s.a', ['libhearthd_modules.a', 'libhearthd_admin.a']),
                  ('libhearthd_modules.a', ['libhearthd_c2s.a', 'libhearthd_net.a',
                                            'libhearthd_admin.a']),
                  ('libhearthd_admin.a', ['libhearthd_c2s.a'])]
        for lib in lower:
            layers.append((lib, server))
        bad = []
        for lib, above in layers:
            _, undefined = self.defined_and_undefined(lib)
            for other in above:
                defined, _ = self.defined_and_undefined(other)
                for sym in sorted(undefined & defined):
                    bad.append('%s needs %s from %s' % (lib, sym, other))
        self.assertEqual(bad, [], 'links pointing up or across:\n' + '\n'.join(bad))

    def test_shared_library_exports_only_hearth(self):
        """libhearth.so, the library programs link: only the public hearth_* API, nothing of
        the server (server__, worker__, c2s__, router__) nor internal file__verb helpers or
        test hooks (hearth__*), and a versioned soname."""
        path = os.path.join(BUILD, 'libhearth.so')
        if not os.path.exists(path):
            self.skipTest('libhearth.so is not built')
        out = subprocess.run(['nm', '-D', '--defined-only', path], capture_output=True,
                             text=True, check=True).stdout
        names = [line.split()[-1] for line in out.splitlines() if len(line.split()) == 3]
        names = [n.split('@')[0] for n in names if not n.startswith('HEARTH_')]
        self.assertTrue(any(n == 'hearth_client_new' for n in names), 'no hearth_client_new')
        bad = [n for n in names if not n.startswith('hearth_') or n.startswith('hearth__')
               or re.match(r'(server|worker|c2s|router)__', n)]
        self.assertEqual(bad, [], 'symbols libhearth.so must not export: %s' % bad)
        dyn = subprocess.run(['objdump', '-p', path], capture_output=True, text=True,
                             check=True).stdout
        self.assertRegex(dyn, r'SONAME\s+libhearth\.so\.\d+')
        needed = re.findall(r'NEEDED\s+(\S+)', dyn)
        self.assertFalse([n for n in needed if 'hearthd' in n or 'sqlite' in n], needed)


if __name__ == '__main__':
    unittest.main(verbosity=2)
