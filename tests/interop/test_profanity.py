#!/usr/bin/python3
"""Interop: Debian's profanity (0.13, libstrophe) against a live hearthd.

profanity runs headless in its own tmux server (own socket in a temporary
directory) with HOME and the XDG directories in that directory, so nothing of
the user's profanity or tmux is read or touched. The test types profanity
commands with `tmux send-keys`, reads the screen with `tmux capture-pane`, and
waits for conditions with deadlines, never for a fixed time.

It checks that profanity logs in over STARTTLS (and over direct TLS, which
profanity calls `tls legacy`) with SCRAM, binds its resource, and that a
message it sends reaches a raw XMPP client from the integration harness, and
one sent back shows up on profanity's screen.

It also checks the roster (RFC 6121) as profanity presents it: with the state
prepared by raw clients beforehand (alice and bob subscribed to each other,
bob named and grouped, a pending outgoing subscription to carol, bob online
with a status), profanity's roster panel and its /roster command list both
contacts, a message to the contact addressed by its roster name reaches bob,
and bob's presence change shows up in profanity.

Run through ctest (which sets HEARTHD, HEARTHCTL and PYTHONPATH), or directly:
  HEARTHD=build/hearthd HEARTHCTL=build/hearthctl /usr/bin/python3 tests/interop/test_profanity.py
Prints 'N passed, N failed' and exits non-zero on any failure."""

import glob
import hashlib
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

import hearth  # noqa: E402  (the integration harness: Server, Client, wait_for)
import imlib   # noqa: E402  (IMClient: backlog, roster and presence helpers)


def _default_binaries():
    """Outside ctest, use the most recent build tree's binaries."""
    for var, name in (('HEARTHD', 'hearthd'), ('HEARTHCTL', 'hearthctl')):
        if os.environ.get(var):
            continue
        found = [p for p in glob.glob(os.path.join(REPO, 'build*', name)) if os.access(p, os.X_OK)]
        if found:
            os.environ[var] = max(found, key=os.path.getmtime)


_default_binaries()

PROFANITY = shutil.which('profanity') or '/usr/bin/profanity'
TMUX = shutil.which('tmux') or '/usr/bin/tmux'
OPENSSL = shutil.which('openssl')

PASSWORD = 'Pr0fanity-s3cret'  # no spaces: /account set takes one word
STEP_TIMEOUT = 10.0     # one profanity command or one server reaction
LOGIN_TIMEOUT = 15.0    # TCP + STARTTLS + SCRAM + bind


def cert_sha1(path):
    """The SHA-1 fingerprint profanity shows for a certificate (lower-case hex)."""
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha1(der).hexdigest()


class Profanity:
    """One profanity process in a private tmux server and a private HOME."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='hearth-prof-')
        self.home = os.path.join(self.dir, 'home')
        self.socket = os.path.join(self.dir, 'tmux.sock')
        self.logfile = os.path.join(self.dir, 'profanity.log')
        self.session = 'prof'
        for sub in ('', '.config', '.local/share', '.cache', 'run'):
            os.makedirs(os.path.join(self.home, sub), exist_ok=True)
        os.chmod(os.path.join(self.home, 'run'), 0o700)
        # A minimal environment: nothing inherited that could point profanity
        # or tmux at the user's own files, sessions or D-Bus.
        self.env = {
            'PATH': '/usr/bin:/bin',
            'HOME': self.home,
            'XDG_CONFIG_HOME': os.path.join(self.home, '.config'),
            'XDG_DATA_HOME': os.path.join(self.home, '.local/share'),
            'XDG_CACHE_HOME': os.path.join(self.home, '.cache'),
            'XDG_RUNTIME_DIR': os.path.join(self.home, 'run'),
            'TMUX_TMPDIR': self.dir,
            'TERM': 'xterm-256color',
            'LANG': 'C.UTF-8',
            'LC_ALL': 'C.UTF-8',
        }
        self.conf = os.path.join(self.dir, 'tmux.conf')
        with open(self.conf, 'w') as f:
            # keep the pane after profanity exits so a crash can be read
            f.write('set -g remain-on-exit on\nset -g history-limit 20000\n')
        self.started = False
        self.pid = None

    def tmux(self, *args, check=True):
        r = subprocess.run([TMUX, '-S', self.socket, '-f', self.conf] + list(args),
                           env=self.env, capture_output=True, text=True, timeout=10)
        if check and r.returncode != 0:
            raise AssertionError('tmux %s failed (%d): %s' % (' '.join(args), r.returncode, r.stderr))
        return r

    def start(self):
        self.tmux('new-session', '-d', '-s', self.session, '-x', '200', '-y', '50',
                  '%s -l DEBUG -f %s' % (PROFANITY, self.logfile))
        self.started = True
        self.pid = int(self.tmux('display-message', '-p', '-t', self.session, '#{pane_pid}').stdout)
        self.wait_screen(r"Type '/help' to show complete help", what='profanity start-up')
        return self

    @staticmethod
    def _running(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie of ours would not count; tmux reaps profanity, though
            with open('/proc/%d/stat' % pid) as f:
                return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
        except (OSError, IndexError):
            return True

    def close(self):
        """/quit, then end the tmux server, and make sure profanity is gone
        before its directory is removed (it writes its files on the way out)."""
        if self.started:
            if not self.dead():
                self.type('/quit')
                try:
                    hearth.wait_for(self.dead, 5, 'profanity to quit', interval=0.05)
                except AssertionError:
                    pass
            self.tmux('kill-server', check=False)
            self.started = False
            try:
                hearth.wait_for(lambda: not self._running(self.pid), 5, 'profanity to exit',
                                interval=0.05)
            except AssertionError:
                os.kill(self.pid, 9)
            hearth.wait_for(lambda: not os.path.exists(self.socket) or
                            self.tmux('has-session', check=False).returncode != 0,
                            5, 'the tmux server to exit', interval=0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    def screen(self):
        """The whole pane with its scrollback, wrapped lines joined."""
        r = self.tmux('capture-pane', '-p', '-J', '-S', '-20000', '-t', self.session, check=False)
        return r.stdout if r.returncode == 0 else ''

    def dead(self):
        r = self.tmux('display-message', '-p', '-t', self.session, '#{pane_dead}', check=False)
        return r.returncode != 0 or r.stdout.strip() == '1'

    def wait_screen(self, pattern, count=1, timeout=STEP_TIMEOUT, what=None):
        """Wait until pattern (regex) appears count times on the screen; return
        the last match."""
        rx = re.compile(pattern)

        def found():
            if self.dead():
                raise AssertionError('profanity is gone while waiting for %s; screen:\n%s'
                                     % (what or pattern, self.screen_tail()))
            m = list(rx.finditer(self.screen()))
            return m[-1] if len(m) >= count else None
        try:
            return hearth.wait_for(found, timeout, what or ('/%s/ on the profanity screen' % pattern),
                                   interval=0.05)
        except AssertionError as e:
            raise AssertionError('%s; screen:\n%s' % (e, self.screen_tail())) from None

    def visible(self):
        """The lines on the pane now (no scrollback): the current window with
        its title bar, status bar and, in the console, the roster panel."""
        r = self.tmux('capture-pane', '-p', '-t', self.session, check=False)
        return r.stdout.splitlines() if r.returncode == 0 else []

    def roster_panel(self):
        """The console window's right-hand roster panel as a list of
        (heading, [entries]) in screen order, or None when it is not on the
        screen. The panel always ends with its 'Rooms (N)' heading, whose
        column is the panel's heading column; entries are indented below
        their heading. (The N of a heading counts unread messages.)"""
        lines = self.visible()
        col = None
        for ln in lines:
            m = re.search(r'(?<=\s)Rooms \(\d+\)\s*$', ln)
            if m:
                col = m.start()
                break
        if col is None:
            return None
        sections = []
        for ln in lines[1:]:  # line 0 is the title bar
            if re.match(r'^ \[\d\d:\d\d\] ', ln):  # the status bar: the panel ends above it
                break
            part = ln[col:].rstrip()
            if not part:
                continue
            m = re.match(r'^(\S.*?) \(\d+\)$', part)
            if m:
                sections.append((m.group(1), []))
            elif part[0] == ' ' and sections:
                sections[-1][1].append(part.strip())
        return sections

    def wait_panel(self, want, what):
        """Wait until the roster panel lists each entry of want ({entry:
        heading}) under that heading; return the panel."""
        last = [None]

        def ok():
            if self.dead():
                raise AssertionError('profanity is gone while waiting for %s; screen:\n%s'
                                     % (what, self.screen_tail()))
            panel = self.roster_panel()
            last[0] = panel
            if not panel:
                return None
            where = {}
            for heading, entries in panel:
                for e in entries:
                    where.setdefault(e, heading)
            return panel if all(where.get(e) == h for e, h in want.items()) else None
        try:
            return hearth.wait_for(ok, STEP_TIMEOUT, what, interval=0.05)
        except AssertionError as e:
            raise AssertionError('%s; roster panel %r; pane:\n%s'
                                 % (e, last[0], '\n'.join(ln.rstrip() for ln in self.visible()
                                                          if ln.strip()))) from None

    def count(self, pattern):
        return len(re.findall(pattern, self.screen()))

    def screen_tail(self, lines=40):
        text = [ln.rstrip() for ln in self.screen().splitlines() if ln.strip()]
        return '\n'.join(text[-lines:])

    def type(self, text):
        self.tmux('send-keys', '-t', self.session, '-l', text)
        self.tmux('send-keys', '-t', self.session, 'Enter')

    def command(self, text, reply):
        """Type a command and wait for one more occurrence of its reply."""
        before = self.count(reply)
        self.type(text)
        return self.wait_screen(reply, count=before + 1, what='reply to %r' % text)

    def add_account(self, name, jid, port, tls, resource, password=PASSWORD):
        self.command('/account add %s' % name, r'Account created\.')
        for key, value in (('jid', jid), ('server', '127.0.0.1'), ('port', str(port)),
                           ('tls', tls), ('resource', resource), ('password', password)):
            label = {'tls': 'TLS policy'}.get(key, key)
            self.command('/account set %s %s %s' % (name, key, value),
                         r'Updated %s for account %s' % (re.escape(label), re.escape(name)))

    def trust_dir(self, cert):
        """A directory holding cert under its OpenSSL subject-hash name, as
        libstrophe's capath needs; None if openssl is not installed."""
        if not OPENSSL:
            return None
        cadir = os.path.join(self.dir, 'ca')
        os.makedirs(cadir, exist_ok=True)
        shutil.copy(cert, os.path.join(cadir, 'hearth.pem'))
        h = subprocess.run([OPENSSL, 'x509', '-hash', '-noout', '-in', cert], capture_output=True,
                           text=True, timeout=10, check=True).stdout.strip()
        os.symlink('hearth.pem', os.path.join(cadir, '%s.0' % h))
        return cadir


class ProfanityCase(unittest.TestCase):
    """One hearthd per class (with the class's USERS); each test runs its own
    profanity. No tests here: the subclasses hold them."""

    server = None
    USERS = ('alice', 'bob')

    @classmethod
    def setUpClass(cls):
        for path in (PROFANITY, TMUX):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest('%s is not installed' % path)
        cls.server = hearth.Server(users={u: PASSWORD for u in cls.USERS})
        cls.server.shared = True
        try:
            cls.server.start()
        except BaseException:
            cls.server.close(failed=True)
            raise
        cls.fingerprint = cert_sha1(cls.server.cert)

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.close()

    def setUp(self):
        self.prof = Profanity()
        self.addCleanup(self.prof.close)
        self.addCleanup(self._dump_on_failure)
        self.prof.start()

    def _dump_on_failure(self):
        # unittest reports a failure to the result as soon as it happens
        # (outcome.success is reset for each cleanup, so it cannot be used).
        result = getattr(getattr(self, '_outcome', None), 'result', None)
        failed = getattr(result, 'failures', []) + getattr(result, 'errors', [])
        if any(test is self for test, _ in failed):
            sys.stderr.write('\n----- profanity screen -----\n%s\n' % self.prof.screen_tail(80))
            try:
                with open(self.prof.logfile, errors='replace') as f:
                    sys.stderr.write('----- profanity log (tail) -----\n%s\n' % f.read()[-6000:])
            except OSError:
                pass

    # -- helpers ------------------------------------------------------------

    def connect(self, account, resource):
        """/connect, accept hearthd's self-signed certificate if profanity asks
        (after checking the fingerprint is the one in cert.pem), and wait for
        the login on both sides. Returns whether a prompt was answered."""
        jid = 'alice@localhost/%s' % resource
        logged_in = r'%s logged in successfully' % re.escape(jid)
        prompt = r'Use \'/tls allow\' to accept this certificate'
        n_prompt = self.prof.count(prompt)
        n_auth = len(re.findall(r'authenticated alice@localhost with ', self.server.current_log()))
        self.prof.type('/connect %s' % account)
        m = self.prof.wait_screen('(%s)|(%s)|(Login failed|Connection failed|Disconnected)'
                                  % (logged_in, prompt), timeout=LOGIN_TIMEOUT,
                                  what='login or certificate prompt')
        prompted = False
        if m.group(2) and self.prof.count(prompt) > n_prompt:
            prompted = True
            fps = re.findall(r'Fingerprint\s*:\s*([0-9a-fA-F]{40})', self.prof.screen())
            self.assertTrue(fps, 'no fingerprint in the certificate prompt')
            self.assertEqual(fps[-1].lower(), self.fingerprint,
                             'profanity was shown a certificate that is not cert.pem')
            self.prof.type('/tls allow')
            m = self.prof.wait_screen('(%s)|(Login failed|Connection failed|Disconnected)' % logged_in,
                                      timeout=LOGIN_TIMEOUT, what='login after /tls allow')
            self.assertTrue(m.group(1), 'profanity did not log in: %s' % m.group(0))
        else:
            self.assertTrue(m.group(1), 'profanity did not log in: %s' % m.group(0))
        # The server side: SCRAM (the goal is SCRAM-SHA-256, which libstrophe
        # prefers over SCRAM-SHA-1 and PLAIN), then the resource is bound.
        auth = self.server.wait_log(r'authenticated alice@localhost with (\S+)', count=n_auth + 1,
                                    timeout=STEP_TIMEOUT)[-1]
        self.assertRegex(auth.group(1), r'^SCRAM-SHA-256(-PLUS)?$',
                         'profanity authenticated with %s' % auth.group(1))
        self.server.wait_log(r'bound %s on worker \d+' % re.escape(jid), timeout=STEP_TIMEOUT)
        return prompted

    def exchange(self, resource, body):
        """profanity -> raw client and back."""
        bob = self.server.login('bob', PASSWORD, resource='raw-%s' % resource)
        self.addCleanup(bob.close)
        self.prof.type('/msg %s %s' % (bob.jid, body))
        msg = bob.recv_until(lambda s: s.tag == hearth.q(hearth.NS_CLIENT, 'message'),
                             timeout=STEP_TIMEOUT)
        self.assertEqual(msg.findtext(hearth.q(hearth.NS_CLIENT, 'body')), body)
        self.assertEqual(msg.get('from'), 'alice@localhost/%s' % resource)
        self.assertEqual(msg.get('to'), bob.jid)
        # ... and a reply shows up in profanity's chat window.
        reply = 'reply to %s from the raw client' % resource
        bob.send("<message to='alice@localhost/%s' type='chat' id='r1'><body>%s</body></message>"
                 % (resource, hearth.xml_escape(reply)))
        # profanity files an incoming chat under the sender's bare JID, in
        # another window than the one /msg opened for the full JID: focus it.
        self.prof.type('/msg bob@localhost')
        self.prof.wait_screen(re.escape(reply), what='the reply on profanity\'s screen')
        self.server.assert_alive()


class ProfanityTest(ProfanityCase):
    """Login over STARTTLS and direct TLS, and a message each way."""

    def test_starttls_accepting_the_certificate_prompt(self):
        """No trust configured: profanity shows hearthd's certificate (its
        fingerprint must be cert.pem's), '/tls allow' continues the login."""
        self.prof.add_account('alice', 'alice@localhost', self.server.port, 'force', 'prompt')
        self.assertTrue(self.connect('alice', 'prompt'),
                        'profanity trusted a self-signed certificate without asking')
        self.exchange('prompt', 'hello over STARTTLS after /tls allow')

    def test_starttls_with_trusted_certpath(self):
        """cert.pem in profanity's trusted certificate path: no prompt."""
        cadir = self.prof.trust_dir(self.server.cert)
        if cadir is None:
            self.skipTest('openssl is not installed (needed to hash the trusted certificate)')
        self.prof.command('/tls certpath set %s' % cadir,
                          r'Certificate path set to: %s' % re.escape(cadir))
        self.prof.add_account('alice', 'alice@localhost', self.server.port, 'force', 'certpath')
        self.assertFalse(self.connect('alice', 'certpath'),
                         'profanity asked about a certificate in its trusted path')
        self.exchange('certpath', 'hello over STARTTLS with a trusted certificate')

    def test_direct_tls(self):
        """XEP-0368 port, which profanity reaches with 'tls legacy'."""
        self.prof.add_account('alice', 'alice@localhost', self.server.tls_port, 'legacy', 'direct')
        self.connect('alice', 'direct')
        self.server.wait_log(r'accepted from 127\.0\.0\.1 \(direct TLS\)')
        self.exchange('direct', 'hello over direct TLS')


ALICE = 'alice@localhost'
BOB = 'bob@localhost'
CAROL = 'carol@localhost'
BOB_NAME = 'Bob the Builder'


class ProfanityRosterTest(ProfanityCase):
    """Rosters, subscriptions and presence (RFC 6121) as profanity shows them.
    Its own hearthd, so the roster it prepares does not reach the tests above."""

    USERS = ('alice', 'bob', 'carol')

    def im(self, user, resource):
        c = imlib.IMClient(self.server)
        self.addCleanup(c.close)
        c.user, c.password = user, PASSWORD
        c.login(user, PASSWORD, resource=resource)
        r = c.roster_get()
        self.assertEqual(r.get('type'), 'result', hearth.to_str(r))
        return c

    def prepare_roster(self):
        """With raw clients, before profanity logs in: alice has bob (named,
        in group Work, subscription both) and carol (subscription none, an
        outgoing request pending); bob is online with a status. Returns bob's
        client, which stays online."""
        alice = self.im('alice', 'setup')
        alice.presence()
        bob = self.im('bob', 'raw')
        bob.presence(status='Building things')
        r = alice.roster_set(BOB, name=BOB_NAME, groups=['Work'])
        self.assertEqual(r.get('type'), 'result', hearth.to_str(r))
        # alice -> bob, approved; bob -> alice, approved
        alice.sub('subscribe', BOB)
        bob.wait(lambda s: imlib.is_sub(s, 'subscribe', ALICE), what='subscribe from alice')
        bob.sub('subscribed', ALICE)
        bob.sub('subscribe', ALICE)
        alice.wait(lambda s: imlib.is_sub(s, 'subscribe', BOB), what='subscribe from bob')
        alice.sub('subscribed', BOB)
        # alice -> carol, who is offline: stays pending
        alice.sub('subscribe', CAROL)
        last = [None]

        def prepared():
            last[0] = alice.roster()
            b, c = last[0].get(BOB), last[0].get(CAROL)
            return (b is not None and c is not None
                    and (b['subscription'], b['ask'], b['name'], b['groups'])
                    == ('both', None, BOB_NAME, ['Work'])
                    and (c['subscription'], c['ask']) == ('none', 'subscribe'))
        try:
            hearth.wait_for(prepared, STEP_TIMEOUT, "alice's roster", interval=0.05)
        except AssertionError as e:
            raise AssertionError('%s: the server did not build the roster; it is %r' % (e, last[0])) from None
        hearth.wait_for(lambda: bob.view(ALICE) == ('both', None), STEP_TIMEOUT, "bob's roster",
                        interval=0.05)
        alice.logout()
        bob.sync()
        bob.take()
        return bob

    def test_roster_message_and_presence(self):
        """profanity logs in, sees its roster (panel and /roster), sends a
        message to a contact by its roster name, and sees its presence change."""
        bob = self.prepare_roster()
        cadir = self.prof.trust_dir(self.server.cert)
        if cadir is not None:
            self.prof.command('/tls certpath set %s' % cadir,
                              r'Certificate path set to: %s' % re.escape(cadir))
        self.prof.add_account('alice', ALICE, self.server.port, 'force', 'prof')
        self.connect('alice', 'prof')  # answers the certificate prompt if there is one

        # The roster panel (grouped by presence, profanity's default): bob by
        # his roster name under Online, carol (no presence for her) under Offline.
        self.prof.wait_panel({BOB_NAME: 'Online', CAROL: 'Offline'},
                             'Bob online and carol offline in the roster panel')
        # ... with his status. (Not from the '++ ... is online' console line:
        # profanity sends its initial presence before its roster request, so
        # bob's presence may come before the roster and then is stored without
        # that line being printed.)
        self.prof.command('/status get "%s"' % BOB_NAME,
                          r'%s is online, "Building things"' % re.escape(BOB_NAME))

        # /roster lists jid (nick) - subscription - groups
        self.prof.type('/roster')
        self.prof.wait_screen(r'Roster: jid \(nick\) - subscription - groups', what='/roster')
        self.prof.wait_screen(r'(?m)^.* - +%s \(%s\) - both - Work\s*$'
                              % (re.escape(BOB), re.escape(BOB_NAME)), what='bob in /roster')
        self.prof.wait_screen(r'(?m)^.* - +%s - none, request sent\s*$' % re.escape(CAROL),
                              what='carol (pending) in /roster')

        # A message to the contact named by its roster name reaches bob.
        body = 'hello Bob, from profanity by your roster name'
        self.prof.type('/msg "%s" %s' % (BOB_NAME, body))
        msg = bob.wait(lambda s: imlib.is_msg(s) and s.find(hearth.q(hearth.NS_CLIENT, 'body')) is not None,
                       timeout=STEP_TIMEOUT, what="profanity's message")
        self.assertEqual(msg.findtext(hearth.q(hearth.NS_CLIENT, 'body')), body)
        self.assertEqual(msg.get('from'), '%s/prof' % ALICE)
        self.assertIn(msg.get('to'), (BOB, bob.jid))
        self.assertEqual(msg.get('type'), 'chat')
        self.prof.wait_screen(r'Bob the Builder \[online\]', what="the chat window's title")

        # bob goes away with a status: the chat window's title says so, and
        # so do the roster panel and /status get in the console.
        bob.presence(show='away', status='Gone fishing')
        self.prof.wait_screen(r'Bob the Builder \[away\]', what='bob away in the chat title')
        self.prof.type('/win 1')
        self.prof.wait_panel({BOB_NAME: 'Away', CAROL: 'Offline'}, 'Bob under Away in the roster panel')
        self.prof.command('/status get "%s"' % BOB_NAME,
                          r'%s is away, "Gone fishing"' % re.escape(BOB_NAME))

        # Grouped by roster group: bob under Work, carol without a group.
        self.prof.command('/roster by group', r'Grouping roster by roster group')
        self.prof.wait_panel({BOB_NAME: 'Work', CAROL: 'no group'}, 'the roster panel by group')
        self.server.assert_alive()


if __name__ == '__main__':
    hearth.main()
