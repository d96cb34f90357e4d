"""`make install` and a program built against the installed copy: cmake --install into a
temporary prefix (hearth-bench there too), the tutorial's first program (docs/client.md, the C
block marked "compiled by tests/install_check.py") compiled with only `pkg-config --cflags --libs hearth`, then run
against the installed libhearth.so.0. Run by ctest with the build directory as argument."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(ROOT, 'build')


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.prefix = tempfile.mkdtemp(prefix='hearth-install-')
        self.addCleanup(shutil.rmtree, self.prefix, True)

    def test_tutorial_builds_against_the_installed_library(self):
        r = subprocess.run(['cmake', '--install', BUILD, '--prefix', self.prefix],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pc = [os.path.join(d, f) for d, _, files in os.walk(self.prefix) for f in files
              if f == 'hearth.pc']
        self.assertEqual(len(pc), 1, 'hearth.pc not installed')
        headers = os.listdir(os.path.join(self.prefix, 'include', 'hearth'))
        self.assertIn('client.h', headers)
        libdir = os.path.dirname(os.path.dirname(pc[0]))
        self.assertTrue(os.path.islink(os.path.join(libdir, 'libhearth.so')))
        self.assertTrue(os.path.exists(os.path.join(libdir, 'libhearth.so.0')))

        with open(os.path.join(ROOT, 'docs', 'client.md'), encoding='utf-8') as f:
            doc = f.read()
        m = re.search(r'<!-- compiled by tests/install_check.py -->\n```c\n(.*?)\n```', doc, re.S)
        self.assertIsNotNone(m, 'no compiled example in docs/client.md')
        src = os.path.join(self.prefix, 'hello.c')
        with open(src, 'w', encoding='utf-8') as f:
            f.write(m.group(1) + '\n')

        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc[0]))
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'hearth'], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        self.assertIn('-lhearth', flags)
        exe = os.path.join(self.prefix, 'hello')
        # A sanitizer build's library needs the program built with the same runtime.
        with open(os.path.join(BUILD, 'CMakeCache.txt')) as f:
            sanitized = 'HEARTH_SANITIZE:BOOL=ON' in f.read()
        if sanitized:
            flags = ['-fsanitize=address,undefined'] + flags
        r = subprocess.run(['cc', '-Wall', '-Wextra', '-Werror', '-o', exe, src] + flags,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        ldd = subprocess.run(['ldd', exe], env=run_env, capture_output=True, text=True).stdout
        self.assertIn(os.path.join(libdir, 'libhearth.so.0'), ldd)
        r = subprocess.run([exe], env=run_env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn('usage:', r.stderr)
        # A login that cannot succeed says why, through the installed library (an IP literal
        # as the domain: no DNS query leaves the machine).
        r = subprocess.run([exe, 'nobody@127.0.0.1', 'pw', 'x@127.0.0.1'], env=run_env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('cannot log in:', r.stderr)

        # hearth, the terminal client, is installed beside the library and finds it there
        # (its RPATH is $ORIGIN/../lib), without LD_LIBRARY_PATH. Absent only when the build
        # had no libedit.
        with open(os.path.join(BUILD, 'CMakeCache.txt')) as f:
            have_tui = re.search(r'^LIBEDIT_FOUND:INTERNAL=1$', f.read(), re.M)
        if have_tui:
            tui = os.path.join(self.prefix, 'bin', 'hearth')
            self.assertTrue(os.access(tui, os.X_OK), 'bin/hearth not installed')
            ldd = subprocess.run(['ldd', tui], capture_output=True, text=True).stdout
            m = re.search(r'libhearth\.so\.0 => (\S+)', ldd)
            self.assertIsNotNone(m, ldd)
            self.assertEqual(os.path.realpath(m.group(1)),
                             os.path.realpath(os.path.join(libdir, 'libhearth.so.0')))
            r = subprocess.run([tui, '--version'], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r'^hearth \d+\.\d+')

        # The tools come along: hearth-bench, on the installed library.
        bench = os.path.join(self.prefix, 'bin', 'hearth-bench')
        self.assertTrue(os.access(bench, os.X_OK), 'hearth-bench not installed')
        ldd = subprocess.run(['ldd', bench], env=run_env, capture_output=True, text=True).stdout
        self.assertIn(os.path.join(libdir, 'libhearth.so.0'), ldd)
        r = subprocess.run([bench, '--help'], env=run_env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('--scenario', r.stdout)


if __name__ == '__main__':
    unittest.main(verbosity=2)
