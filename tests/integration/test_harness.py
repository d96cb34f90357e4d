"""The test harness itself: a test file whose client program is missing must show as
skipped, never as passed (regression: interop files exited 0 when everything skipped)."""

import os
import subprocess
import sys
import unittest

from hearth import SKIP_EXIT, main

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(os.path.dirname(HERE), 'interop')


class SkipExitTest(unittest.TestCase):
    def run_file(self, path, **env):
        e = dict(os.environ, **env)
        return subprocess.run([sys.executable, path], capture_output=True, text=True, env=e,
                              timeout=120)

    def test_missing_client_program_exits_skipped(self):
        r = self.run_file(os.path.join(INTEROP, 'test_sendxmpp.py'),
                          HEARTH_SENDXMPP='/nonexistent/go-sendxmpp')
        self.assertEqual(r.returncode, SKIP_EXIT, r.stdout + r.stderr)
        self.assertIn('skipped', r.stdout)
        self.assertIn('0 passed, 0 failed', r.stdout)


if __name__ == '__main__':
    main()
