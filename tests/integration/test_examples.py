"""The programs in examples/ built against the INSTALLED library (cmake --install into a
temporary prefix, then cc with only `pkg-config --cflags --libs hearth`) and run against a live
hearthd: the quick start does what a Smack client session does (tests/reference: log in, list
the roster, presence, a message, create and configure a room, invite, log out) and a client of
the test checks each effect; the echo bot answers a message and logs out on SIGTERM."""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from clientlib import TIMEOUT, Probe
from hearth import DOMAIN, Server, main
from test_client_managers import wait_all

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USERS = {'alice': 'alice-pw', 'bob': 'bob-pw', 'carol': 'carol-pw', 'dave': 'dave-pw'}
MUC = 'conference.' + DOMAIN


def build_dir():
    probe = os.environ.get('HEARTH_CLIENT_PROBE')
    if not probe:
        raise unittest.SkipTest('HEARTH_CLIENT_PROBE is not set (run through ctest)')
    return os.path.dirname(probe)


def read_until(proc, last, timeout=TIMEOUT):
    """Lines of proc's stdout (a binary pipe) up to and including the line last, within the
    deadline."""
    buf, lines = b'', []
    deadline = time.monotonic() + timeout
    while last not in lines:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise AssertionError('no line %r in time: %s' % (last, lines))
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError('exited (%r) before %r: %s %s'
                                 % (proc.poll(), last, lines, proc.stderr.read()))
        buf += chunk
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            lines.append(line.decode())
    return lines


class ExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = build_dir()
        cls.prefix = tempfile.mkdtemp(prefix='hearth-examples-')
        r = subprocess.run(['cmake', '--install', build, '--prefix', cls.prefix],
                           capture_output=True, text=True)
        if r.returncode:
            raise AssertionError('install: ' + r.stdout + r.stderr)
        pcdir = [d for d, _, files in os.walk(cls.prefix) if 'hearth.pc' in files][0]
        cls.libdir = os.path.dirname(pcdir)
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'hearth'], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        with open(os.path.join(build, 'CMakeCache.txt')) as f:
            if 'HEARTH_SANITIZE:BOOL=ON' in f.read():
                flags = ['-fsanitize=address,undefined'] + flags
        cls.exe = {}
        for name in ('quickstart', 'echo_bot'):
            exe = os.path.join(cls.prefix, name)
            r = subprocess.run(['cc', '-Wall', '-Wextra', '-Werror', '-o', exe,
                                os.path.join(ROOT, 'examples', name + '.c')] + flags,
                               capture_output=True, text=True)
            if r.returncode:
                raise AssertionError('%s does not build against the installed library:\n%s'
                                     % (name, r.stderr))
            cls.exe[name] = exe
        cls.server = Server(users=USERS)
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def setUp(self):
        self.probes = []

    def tearDown(self):
        codes = [(p.name, p.close()) for p in self.probes]
        self.assertEqual([c for c in codes if c[1] != 0], [])
        self.server.assert_alive()

    def login(self, user, *extra):
        p = Probe('--jid', '%s@%s/probe' % (user, DOMAIN), '--password', USERS[user],
                  '--host', '127.0.0.1', '--port', self.server.port, '--ca', self.server.cert,
                  '--managers', '--quiet', *extra, name=user)
        self.probes.append(p)
        p.cmd('connect')
        p.wait_for(r'^online ')
        p.wait_for(r'^roster-loaded OK ')
        return p

    def run_example(self, name, *args, text=True):
        return subprocess.Popen(
            [self.exe[name], '--host', '127.0.0.1', '--port', str(self.server.port), '--ca',
             self.server.cert] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=text, bufsize=-1 if text else 0,
            env=dict(os.environ, LD_LIBRARY_PATH=self.libdir))

    def test_quickstart_session(self):
        alice, bob = 'alice@' + DOMAIN, 'bob@' + DOMAIN
        room = 'quick@' + MUC
        # alice and bob see each other's presence (a probe of alice sets it up, then leaves)
        a = self.login('alice')
        b = self.login('bob')
        a.cmd('roster-set %s Bob' % bob)
        a.wait_for(r'^iq roster-set OK')
        a.cmd('subscribe ' + bob)
        b.wait_for(r'^subscribe-request ')
        b.cmd('approve ' + alice)
        b.cmd('subscribe ' + alice)
        a.wait_for(r'^subscribe-request ')
        a.cmd('approve ' + bob)
        a.wait_for(r'^roster-changed %s sub=both ' % re.escape(bob))
        b.wait_for(r'^roster-changed %s sub=both ' % re.escape(alice))
        a.cmd('disconnect')
        a.wait_for(r'^disconnected OK')

        q = self.run_example('quickstart', alice, USERS['alice'], bob, room)
        out, err = q.communicate(timeout=60)
        self.assertEqual(q.returncode, 0, out + err)
        full = re.search(r'^online as (%s/\S+)$' % re.escape(alice), out, re.M)
        self.assertIsNotNone(full, out)
        full = full.group(1)
        self.assertIn('roster: 1 contacts\n  %s "Bob" (both)\n' % bob, out)
        mid = re.search(r'^message (\S+) sent to %s$' % re.escape(bob), out, re.M).group(1)
        self.assertIn('room %s created as alice\n' % room, out)
        self.assertRegex(out, r'configuration form of %s: \d+ fields' % re.escape(room))
        self.assertIn('room %s configured\n' % room, out)
        self.assertIn('invited %s to %s\n' % (bob, room), out)
        self.assertTrue(out.endswith('logged out\n'), out)

        # what bob saw: the presence with its status, the message, the invitation, the logout
        fj = re.escape(full)
        wait_all(b, r'^presence %s show=- status=Hello from libhearth prio=0$' % fj,
                 r'^message chat %s id=%s body=\{"text":"你好"\} thread=[0-9a-f]{32} '
                 r'state=active receipt=1$' % (fj, re.escape(mid)),
                 r'^muc-invitation %s from=%s(/\S+)? reason=Join us password=-$'
                 % (re.escape(room), re.escape(alice)),
                 r'^presence %s gone$' % fj)
        # the room outlived its creator (persistent) with the name the form gave it
        b.cmd('muc-join %s Bob' % room)
        b.wait_for(r'^muc-joined %s OK$' % re.escape(room))
        b.cmd("iq disco <iq type='get' to='%s'><query "
              "xmlns='http://jabber.org/protocol/disco#info'/></iq>" % room)
        info = b.wait_for(r'^iq disco OK (.*)$').group(1)
        self.assertIn("name='Quick start'", info)
        self.assertIn("var='muc_persistent'", info)

    def test_echo_bot(self):
        carol = 'carol@' + DOMAIN
        bot = self.run_example('echo_bot', carol, USERS['carol'], text=False)
        self.addCleanup(lambda: bot.poll() is None and bot.kill())
        lines = read_until(bot, 'ready')
        self.assertRegex(lines[0], r'^echo bot online as %s/\S+$' % re.escape(carol))
        d = self.login('dave')
        d.cmd('subscribe ' + carol)
        # the bot approves at once and asks back
        wait_all(d, r'^subscription %s approved$' % re.escape(carol),
                 r'^subscribe-request %s$' % re.escape(carol),
                 r'^presence %s/\S+ show=chat status=I repeat what you say prio=0$'
                 % re.escape(carol))
        d.cmd('chat %s echo 回声 <&>' % carol)
        mid = d.wait_for(r'^sent (\S+)$').group(1)
        wait_all(d, r'^message chat %s/\S+ id=\S+ body=echo 回声 <&> thread=t1 state=active '
                 r'receipt=0$' % re.escape(carol),
                 r'^receipt %s/\S+ %s$' % (re.escape(carol), re.escape(mid)))
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=TIMEOUT)
        out, err = out.decode(), err.decode()
        self.assertEqual(bot.returncode, 0, out + err)
        self.assertIn('echoed message 1 to dave@%s/probe\n' % DOMAIN, out)
        self.assertTrue(out.endswith('logged out\nechoed 1 messages\n'), out)
        d.wait_for(r'^presence %s/\S+ gone$' % re.escape(carol))


if __name__ == '__main__':
    main()
