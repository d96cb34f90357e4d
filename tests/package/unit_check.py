"""The systemd unit as the build configured it: `systemd-analyze verify` accepts it without a
word (an unknown or misspelt key is only a warning there, so any output fails), with ExecStart
pointed at this build's hearthd and man pointed at this build's pages, which its
Documentation= names. Exits 77 (skipped) where systemd-analyze is missing. Run by ctest with
the build directory as argument."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else 'build'
SKIP = 77


class UnitTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hearth-unit-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(BUILD, 'hearthd.service'), encoding='utf-8') as f:
            self.unit = f.read()

    def verify(self, text):
        path = os.path.join(self.dir, 'hearthd.service')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        # man finds this build's pages first: MANPATH with section folders of links.
        man = os.path.join(self.dir, 'man')
        for page in os.listdir(os.path.join(BUILD, 'man')):
            sect = os.path.join(man, 'man' + page.rsplit('.', 1)[1])
            os.makedirs(sect, exist_ok=True)
            link = os.path.join(sect, page)
            if not os.path.lexists(link):
                os.symlink(os.path.join(BUILD, 'man', page), link)
        env = dict(os.environ, MANPATH=man + ':')
        return subprocess.run(['systemd-analyze', 'verify', path], env=env,
                              capture_output=True, text=True, timeout=60)

    def test_verify_accepts_the_unit(self):
        hearthd = os.path.join(BUILD, 'hearthd')
        text, n = re.subn(r'^ExecStart=\S+/hearthd ', 'ExecStart=%s ' % hearthd, self.unit,
                          flags=re.M)
        self.assertEqual(n, 1, 'no ExecStart=.../hearthd line')
        r = self.verify(text)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ''))

    def test_verify_would_catch_a_misspelt_key(self):
        # The check above cannot pass vacuously: a wrong key is reported.
        text = self.unit.replace('ProtectHome=yes', 'ProtectHomes=yes')
        r = self.verify(text)
        self.assertIn("Unknown key 'ProtectHomes'", r.stdout + r.stderr)

    def test_the_brief_of_the_unit(self):
        want = ['Type=notify', 'User=hearth', 'Group=hearth',
                'ExecReload=/bin/kill -HUP $MAINPID', 'StateDirectory=hearth',
                'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes',
                'NoNewPrivileges=yes', 'ReadWritePaths=/var/lib/hearth', 'CapabilityBoundingSet=\n',
                'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'LimitNOFILE=1048576',
                '--config /etc/hearth/hearthd.conf --data-dir /var/lib/hearth']
        for line in want:
            self.assertIn(line, self.unit)


if __name__ == '__main__':
    if not shutil.which('systemd-analyze'):
        print('systemd-analyze is missing: skipped')
        sys.exit(SKIP)
    unittest.main(verbosity=2)
