"""`make install` and a program built against the installed copy: cmake --install into a
temporary prefix (hearth-bench there too), the tutorial's first program (docs/client.md, the C
block marked "compiled by tests/install_check.py") compiled with only `pkg-config --cflags --libs hearth`, then run
against the installed libhearth.so.0. Then the whole installation under PREFIX=/usr/local with a
DESTDIR, as the FHS places it, and `make uninstall`'s script removing exactly that. Run by
ctest with the build directory as argument."""

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


    def test_make_install_needs_no_network(self):
        # `make install` builds, but never through `make deps` (apt-get, npm ci).
        r = subprocess.run(['make', '-n', '-C', ROOT, 'install', 'BUILD=' + BUILD,
                            'DESTDIR=' + self.prefix], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ('install-deps', 'npm', 'apt-get'):
            self.assertNotIn(word, r.stdout)
        self.assertIn('cmake --install', r.stdout)

    def test_everything_installed_under_destdir_and_uninstalled(self):
        dest = self.prefix
        env = dict(os.environ, DESTDIR=dest)
        r = subprocess.run(['cmake', '--install', BUILD, '--prefix', '/usr/local'], env=env,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        root = os.path.join(dest, 'usr', 'local')
        installed = sorted(os.path.relpath(os.path.join(d, f), root)
                           for d, _, files in os.walk(dest) for f in files)
        # Nothing outside the prefix (the unit too lies under it).
        for f in installed:
            self.assertFalse(f.startswith('..'), f)
        with open(os.path.join(BUILD, 'CMakeCache.txt')) as f:
            cache = f.read()
        libdir = re.search(r'^CMAKE_INSTALL_LIBDIR:PATH=(.*)$', cache, re.M).group(1)
        expected = ['sbin/hearthd', 'sbin/hearthctl', 'bin/hearth-bench',
                    libdir + '/libhearth.so', libdir + '/libhearth.so.0',
                    libdir + '/pkgconfig/hearth.pc', 'include/hearth/client.h',
                    'share/man/man8/hearthd.8', 'share/man/man8/hearthctl.8',
                    'share/man/man5/hearthd.conf.5', 'share/man/man1/hearth-bench.1',
                    'share/doc/hearth/examples/hearthd.conf',
                    'share/doc/hearth/examples/low-ports.conf',
                    'lib/systemd/system/hearthd.service']
        if re.search(r'^LIBEDIT_FOUND:INTERNAL=1$', cache, re.M):
            expected += ['bin/hearth', 'share/man/man1/hearth.1']
        for f in expected:
            self.assertTrue(os.path.lexists(os.path.join(root, f)), '%s not installed' % f)
        for f in ('sbin/hearthd', 'sbin/hearthctl', 'bin/hearth-bench'):
            self.assertTrue(os.access(os.path.join(root, f), os.X_OK), f)
        # The example configuration is hearthd's own default file, and hearthd accepts it.
        hearthd = os.path.join(root, 'sbin', 'hearthd')
        example = os.path.join(root, 'share/doc/hearth/examples/hearthd.conf')
        default = subprocess.run([hearthd, '--default-config'], capture_output=True, text=True,
                                 timeout=30)
        with open(example, encoding='utf-8') as f:
            self.assertEqual(f.read(), default.stdout)
        r = subprocess.run([hearthd, '--config', example, '--check-config'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(root, 'lib/systemd/system/hearthd.service')) as f:
            self.assertIn('ExecStart=/', f.read())

        # make uninstall: every installed file goes, and Hearth's own directories with them;
        # a file of someone else's in a shared directory stays.
        other = os.path.join(root, 'bin', 'someone-else')
        with open(other, 'w') as f:
            f.write('not ours\n')
        r = subprocess.run(['cmake', '-DMANIFEST=' + os.path.join(BUILD, 'install_manifest.txt'),
                            '-P', os.path.join(ROOT, 'packaging', 'uninstall.cmake')], env=env,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        left = [os.path.relpath(os.path.join(d, f), root)
                for d, _, files in os.walk(dest) for f in files]
        self.assertEqual(left, ['bin/someone-else'])
        for d in ('include/hearth', 'share/doc/hearth'):
            self.assertFalse(os.path.exists(os.path.join(root, d)), d)
        self.assertTrue(os.path.isdir(os.path.join(root, 'bin')))


if __name__ == '__main__':
    unittest.main(verbosity=2)
