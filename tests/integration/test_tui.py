"""hearth, the terminal client, against a live hearthd.

One-shot commands run as processes without a controlling terminal and are checked by their
output and their exit codes (docs/terminal-client.md): send (a raw client of imlib receives
it), roster, muc join (with and without --stay), register (and again: the refusal code), a
wrong password, nothing listening, a server that never answers, a self-signed certificate
without --cafile, the password from HEARTH_PASSWORD, a file or accounts.conf, and the check that
refuses an accounts file others may read. The interactive mode runs in tmux: two users add
each other, see each other's presence, chat and change status, each on their own screen, which
the test reads with capture-pane until what it waits for is there or a deadline passes."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from hearth import DOMAIN, Server, free_port, main, wait_for
from imlib import IMClient, is_msg, is_pres

USERS = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver'}
TIMEOUT = 15.0
MUC = 'conference.%s' % DOMAIN

# The exit codes of `hearth --help` and docs/terminal-client.md.
EXIT_OK, EXIT_USAGE, EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_CERT = 0, 2, 3, 4, 5
EXIT_AUTH, EXIT_REFUSED, EXIT_TIMEOUT = 7, 8, 9


def tui_path():
    path = os.environ.get('HEARTH_TUI')
    if not path:
        raise unittest.SkipTest('HEARTH_TUI is not set (run through ctest; hearth needs libedit)')
    return path


class Home:
    """A temporary home: HOME, XDG_CONFIG_HOME and XDG_STATE_HOME of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='hearth-tui-')
        self.config = os.path.join(self.dir, 'config')
        self.state = os.path.join(self.dir, 'state')
        self.accounts = os.path.join(self.config, 'hearth', 'accounts.conf')

    def env(self, **extra):
        env = dict(os.environ)
        env.pop('HEARTH_PASSWORD', None)
        env.update(HOME=self.dir, XDG_CONFIG_HOME=self.config, XDG_STATE_HOME=self.state,
                   LC_ALL='C.UTF-8')
        env.update(extra)
        return env

    def write_accounts(self, text, mode=0o600):
        os.makedirs(os.path.dirname(self.accounts), exist_ok=True)
        with open(self.accounts, 'w') as f:
            f.write(text)
        os.chmod(self.accounts, mode)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def account_section(server, name, user, password=None, **keys):
    lines = ['[%s]' % name, 'jid = %s@%s' % (user, DOMAIN), 'host = 127.0.0.1',
             'port = %d' % server.port, 'cafile = %s' % server.cert]
    if password is not None:
        lines.append('password = %s' % password)
    lines += ['%s = %s' % kv for kv in keys.items()]
    return '\n'.join(lines) + '\n'



class OneShotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tui_path()
        cls.server = Server(users=USERS, settings={'registration.open': 'true',
                                                   'registration.rate_limit': '0'})
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.close)

    def tearDown(self):
        self.server.assert_alive()

    def run_hearth(self, *args, password=None, env=None, input=None, timeout=60):
        """hearth with args, in its own session (no controlling terminal: it can never wait
        at a password prompt), HEARTH_PASSWORD=password when given."""
        extra = dict(env or {})
        if password is not None:
            extra['HEARTH_PASSWORD'] = password
        return subprocess.run([tui_path()] + [str(a) for a in args], env=self.home.env(**extra),
                              input=input, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)

    def account(self, user, port=None, cafile=True):
        args = ['--jid', '%s@%s' % (user, DOMAIN), '--host', '127.0.0.1',
                '--port', port or self.server.port]
        if cafile:
            args += ['--cafile', self.server.cert]
        return args

    def raw(self, user, presence=True):
        c = IMClient(self.server)
        self.addCleanup(c.close)
        c.user = user
        c.login(user, USERS[user], resource='raw')
        if presence:
            c.presence()
        c.sync()
        return c

    def assertExit(self, r, code, stderr_pattern=None):
        self.assertEqual(r.returncode, code, 'stdout: %r\nstderr: %r' % (r.stdout, r.stderr))
        if stderr_pattern:
            self.assertRegex(r.stderr, stderr_pattern)

    # -- send -------------------------------------------------------------------

    def test_send_reaches_the_recipient(self):
        bob = self.raw('bob')
        r = self.run_hearth(*self.account('alice'), 'send', 'bob@%s' % DOMAIN, 'hello', 'bob',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_OK)
        self.assertEqual(r.stdout, '')
        m = bob.wait(lambda s: is_msg(s, type_='chat'), what='the message of hearth send')
        self.assertTrue(m.get('from').startswith('alice@%s/' % DOMAIN), m.get('from'))
        self.assertEqual(m.findtext('{jabber:client}body'), 'hello bob')

    def test_send_reads_stdin(self):
        bob = self.raw('bob')
        r = self.run_hearth(*self.account('alice'), 'send', 'bob@%s' % DOMAIN, '-',
                            password=USERS['alice'], input='first line\nsecond line\n')
        self.assertExit(r, EXIT_OK)
        m = bob.wait(lambda s: is_msg(s, type_='chat'), what='the message from stdin')
        self.assertEqual(m.findtext('{jabber:client}body'), 'first line\nsecond line')

    def test_send_to_an_unknown_account_is_refused(self):
        for i in range(5):  # the error must come back before hearth leaves, every time
            r = self.run_hearth(*self.account('alice'), 'send', 'nobody%d@%s' % (i, DOMAIN),
                                'hi', password=USERS['alice'])
            self.assertExit(r, EXIT_REFUSED, r'refused: service-unavailable')

    def test_interactive_mode_reads_plain_lines_without_a_terminal(self):
        bob = self.raw('bob')
        r = self.run_hearth(*self.account('alice'), password=USERS['alice'],
                            input='/msg bob@%s piped hello\nand a second line\n/quit\n' % DOMAIN)
        self.assertExit(r, EXIT_OK)
        self.assertRegex(r.stdout, r'(?m)^hearth: online as alice@%s/' % DOMAIN)
        bodies = [bob.wait(lambda s: is_msg(s, type_='chat'), what='a piped line')
                  .findtext('{jabber:client}body') for _ in range(2)]
        self.assertEqual(bodies, ['piped hello', 'and a second line'])

    def test_direct_tls(self):
        r = self.run_hearth('--jid', 'alice@%s' % DOMAIN, '--host', '127.0.0.1', '--tls', 'direct',
                            '--port', self.server.tls_port, '--cafile', self.server.cert, 'roster',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_OK)
        r = self.run_hearth(*self.account('alice'), '--tls', 'sometimes', 'roster')
        self.assertExit(r, EXIT_USAGE, r"--tls: tls 'sometimes' is not one of")

    # -- roster -----------------------------------------------------------------

    def test_roster_lists_the_contacts(self):
        carol = self.raw('carol', presence=False)
        self.assertEqual(carol.roster_set('bob@%s' % DOMAIN, 'Bob', ('Friends', 'Work'))
                         .get('type'), 'result')
        self.assertEqual(carol.roster_set('dave@%s' % DOMAIN).get('type'), 'result')
        carol.sub('subscribe', 'dave@%s' % DOMAIN)
        carol.sync()
        r = self.run_hearth(*self.account('carol'), 'roster', password=USERS['carol'])
        self.assertExit(r, EXIT_OK)
        self.assertEqual(r.stdout, 'bob@%s\tnone\tBob\tFriends,Work\n'
                                   'dave@%s\tnone+ask\t\t\n' % (DOMAIN, DOMAIN))

    # -- muc join ---------------------------------------------------------------

    def make_room(self, owner, name, subject):
        """A room that owner (a raw client) creates, configures as instant, and titles."""
        room = '%s@%s' % (name, MUC)
        owner.send("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
                   % (room, owner.user))
        owner.wait(lambda s: is_pres(s, from_='%s/%s' % (room, owner.user)), what='self-presence')
        owner.iq_ok('set', "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                    "<x xmlns='jabber:x:data' type='submit'/></query>", to=room)
        owner.message(room, None, type_='groupchat', children='<subject>%s</subject>' % subject)
        owner.wait(lambda s: is_msg(s, type_='groupchat')
                   and s.findtext('{jabber:client}subject') == subject, what='subject echo')
        return room

    def test_muc_join_prints_occupants_and_subject_then_leaves(self):
        carol = self.raw('carol')
        room = self.make_room(carol, 'plans', 'Plans for Friday')
        r = self.run_hearth(*self.account('alice'), 'muc', 'join', room, 'Alice',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_OK)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        occupants = sorted(lines[:2])  # in the order the room announced them
        self.assertRegex(occupants[0], r'^occupant\tAlice\tparticipant\tnone\talice@%s/\S+$'
                         % DOMAIN)
        self.assertRegex(occupants[1], r'^occupant\tcarol\tmoderator\towner\t')
        self.assertEqual(lines[2], 'subject\tPlans for Friday')
        # carol saw alice come and go.
        carol.wait(lambda s: is_pres(s, from_='%s/Alice' % room) and s.get('type') is None,
                   what='alice joining')
        carol.wait(lambda s: is_pres(s, from_='%s/Alice' % room, type_='unavailable'),
                   what='alice leaving')
        # A nickname in use: the room refuses, and hearth says so with the refusal code.
        r = self.run_hearth(*self.account('bob'), 'muc', 'join', room, 'carol',
                            password=USERS['bob'])
        self.assertExit(r, EXIT_REFUSED, r'refused us: conflict')

    def test_muc_join_stay_sends_stdin_and_leaves_at_its_end(self):
        carol = self.raw('carol')
        room = self.make_room(carol, 'stay', 'Staying')
        r = self.run_hearth(*self.account('bob'), 'muc', 'join', '--stay', room, 'Bob',
                            password=USERS['bob'], input='one\ntwo\n')
        self.assertExit(r, EXIT_OK)
        bodies = [carol.wait(lambda s: is_msg(s, from_='%s/Bob' % room, type_='groupchat'),
                             what='a line of stdin').findtext('{jabber:client}body')
                  for _ in range(2)]
        self.assertEqual(bodies, ['one', 'two'])
        carol.wait(lambda s: is_pres(s, from_='%s/Bob' % room, type_='unavailable'),
                   what='bob leaving')
        self.assertIn('message\tBob\tone\n', r.stdout)

    # -- register ---------------------------------------------------------------

    def test_register_then_again_is_the_conflict_code(self):
        args = ['--jid', 'newcomer@%s' % DOMAIN, '--host', '127.0.0.1', '--port',
                self.server.port, '--cafile', self.server.cert]
        r = self.run_hearth(*args, 'register', password='fresh-secret')
        self.assertExit(r, EXIT_OK)
        self.assertEqual(r.stdout, 'registered newcomer@%s\n' % DOMAIN)
        r = self.run_hearth(*args, 'roster', password='fresh-secret')
        self.assertExit(r, EXIT_OK)
        r = self.run_hearth(*args, 'register', password='fresh-secret')
        self.assertExit(r, EXIT_REFUSED, r'the account newcomer@%s exists already' % DOMAIN)

    def test_register_where_registration_is_closed(self):
        closed = Server(users={})  # registration.open is false by default
        self.addCleanup(closed.close)
        closed.start()
        r = self.run_hearth('--jid', 'eve@%s' % DOMAIN, '--host', '127.0.0.1', '--port',
                            closed.port, '--cafile', closed.cert, 'register', password='secret1')
        self.assertExit(r, EXIT_REFUSED, r'the server refused: .*service-unavailable.*closed')

    # -- failures and their codes -------------------------------------------------

    def test_wrong_password(self):
        r = self.run_hearth(*self.account('alice'), 'roster', password='looking-glass')
        self.assertExit(r, EXIT_AUTH, r'authentication of alice@%s failed: wrong user name or '
                                      r'password' % DOMAIN)

    def test_nothing_listening(self):
        r = self.run_hearth(*self.account('alice', port=free_port()), 'roster',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_UNREACHABLE, r'cannot reach the server 127\.0\.0\.1: .*refused')

    def test_a_server_that_never_answers_is_a_timeout(self):
        # The kernel completes the TCP handshake of a listening socket nobody accepts from.
        mute = socket.socket()
        self.addCleanup(mute.close)
        mute.bind(('127.0.0.1', 0))
        mute.listen(4)
        t0 = time.monotonic()
        r = self.run_hearth(*self.account('alice', port=mute.getsockname()[1]), '--timeout', '1',
                            'roster', password=USERS['alice'])
        self.assertExit(r, EXIT_TIMEOUT, r'no answer from 127\.0\.0\.1 within 1 s')
        self.assertLess(time.monotonic() - t0, 10)

    def test_self_signed_certificate_without_cafile(self):
        r = self.run_hearth(*self.account('alice', cafile=False), 'roster',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_CERT, r'certificate of 127\.0\.0\.1 is not trusted: .*'
                                      r'self-signed certificate.*--cafile')
        # The explicit opt-out.
        r = self.run_hearth(*self.account('alice', cafile=False), '--insecure', 'roster',
                            password=USERS['alice'])
        self.assertExit(r, EXIT_OK)

    def test_usage_errors_and_help(self):
        r = self.run_hearth('--no-such-option')
        self.assertExit(r, EXIT_USAGE, r'usage: hearth')
        r = self.run_hearth('send', 'bob@%s' % DOMAIN)
        self.assertExit(r, EXIT_USAGE)
        r = self.run_hearth('frobnicate')
        self.assertExit(r, EXIT_USAGE, r"unknown command 'frobnicate'")
        r = self.run_hearth('--help')
        self.assertExit(r, EXIT_OK)
        for code in range(10):
            self.assertRegex(r.stdout, r'\n    %d  \S' % code)
        # No account at all: nothing in the config directory and no --jid.
        r = self.run_hearth('roster')
        self.assertExit(r, EXIT_USAGE, r'no account: give --jid')

    # -- passwords and the accounts file -------------------------------------------

    def test_password_from_a_file(self):
        pw = os.path.join(self.home.dir, 'pw')
        with open(pw, 'w') as f:
            f.write(USERS['alice'] + '\n')
        r = self.run_hearth(*self.account('alice'), '--password-file', pw, 'roster')
        self.assertExit(r, EXIT_OK)

    def test_no_password_and_no_terminal(self):
        r = self.run_hearth(*self.account('alice'), 'roster', input='')
        self.assertExit(r, EXIT_CONFIG, r'no password for alice@%s' % DOMAIN)

    def test_accounts_file(self):
        text = ('default = second\n' + account_section(self.server, 'first', 'alice', USERS['alice'])
                + account_section(self.server, 'second', 'carol', USERS['carol']))
        self.home.write_accounts(text, 0o600)
        carol = self.raw('carol', presence=False)
        carol.roster_set('bob@%s' % DOMAIN, 'Bobby')
        r = self.run_hearth('roster')  # the default account: carol
        self.assertExit(r, EXIT_OK)
        self.assertEqual(r.stdout, 'bob@%s\tnone\tBobby\t\n' % DOMAIN)
        bob = self.raw('bob')
        r = self.run_hearth('--account', 'first', 'send', 'bob@%s' % DOMAIN, 'from the file')
        self.assertExit(r, EXIT_OK)
        m = bob.wait(lambda s: is_msg(s, type_='chat'), what='the message of account first')
        self.assertTrue(m.get('from').startswith('alice@%s/' % DOMAIN))
        r = self.run_hearth('--account', 'third', 'roster')
        self.assertExit(r, EXIT_USAGE, r'no account \[third\]')

    def test_accounts_file_with_a_password_must_be_private(self):
        self.home.write_accounts(account_section(self.server, 'a', 'alice', USERS['alice']), 0o644)
        r = self.run_hearth('roster')
        self.assertExit(r, EXIT_CONFIG, r'holds a password and may be read by others \(mode 0644\)'
                                        r'.*chmod 600')
        os.chmod(self.home.accounts, 0o640)
        self.assertExit(self.run_hearth('roster'), EXIT_CONFIG)
        os.chmod(self.home.accounts, 0o600)
        self.assertExit(self.run_hearth('roster'), EXIT_OK)
        # Without a password in it, a readable file is fine: the password comes from elsewhere.
        self.home.write_accounts(account_section(self.server, 'a', 'alice'), 0o644)
        self.assertExit(self.run_hearth('roster', password=USERS['alice']), EXIT_OK)

    def test_accounts_file_errors(self):
        self.home.write_accounts('[a]\njid = alice@%s\ncolour = blue\n' % DOMAIN)
        self.assertExit(self.run_hearth('roster'), EXIT_CONFIG, r"unknown key 'colour' in \[a\]")
        self.home.write_accounts('[a]\njid = alice@%s\nport = many\n' % DOMAIN)
        self.assertExit(self.run_hearth('roster'), EXIT_CONFIG, r"the port 'many'")
        self.home.write_accounts(account_section(self.server, 'a', 'alice') +
                                 account_section(self.server, 'b', 'bob'))
        self.assertExit(self.run_hearth('roster'), EXIT_USAGE, r'has 2 accounts')


# --------------------------------------------------------------------------
# The interactive mode in tmux


class Tmux:
    """A private tmux server (its own socket) with one session per user."""

    def __init__(self, workdir):
        self.tmux = shutil.which('tmux')
        if not self.tmux:
            raise unittest.SkipTest('tmux is not installed')
        self.dir = workdir
        self.socket = os.path.join(workdir, 'tmux.sock')

    def cmd(self, *args, check=True):
        r = subprocess.run([self.tmux, '-S', self.socket, '-f', '/dev/null'] + list(args),
                           capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise AssertionError('tmux %s: %s' % (' '.join(args), r.stderr))
        return r.stdout

    def start(self, name, argv, env):
        """A session running argv with exactly env. The exit status goes to NAME.status (a
        dead pane's status reaches tmux late, and not always); the pane stays to be read."""
        script = os.path.join(self.dir, '%s.sh' % name)
        status = os.path.join(self.dir, '%s.status' % name)
        with open(script, 'w') as f:
            f.write('#!/bin/sh\nenv -i %s %s\necho $? > %s.tmp && mv %s.tmp %s\n' % (
                ' '.join("'%s=%s'" % (k, v) for k, v in sorted(env.items())),
                ' '.join("'%s'" % a for a in argv), status, status, status))
        os.chmod(script, 0o700)
        self.cmd('new-session', '-d', '-s', name, '-x', '160', '-y', '50', script, ';',
                 'set-option', '-t', name, 'remain-on-exit', 'on', ';',
                 'set-option', '-t', name, 'history-limit', '5000')

    def screen(self, name):
        return self.cmd('capture-pane', '-p', '-J', '-S', '-5000', '-t', name)

    def wait_screen(self, name, pattern, timeout=TIMEOUT):
        """Poll the screen until pattern (a regex, multiline) is on it; the match."""
        rx = re.compile(pattern, re.M)
        last = ['']

        def found():
            last[0] = self.screen(name)
            return rx.search(last[0])
        try:
            return wait_for(found, timeout, 'screen of %s' % name, interval=0.05)
        except AssertionError:
            raise AssertionError('%s: /%s/ not on the screen within %.0fs; screen:\n%s'
                                 % (name, pattern, timeout, last[0].rstrip()))

    def type(self, name, line):
        self.cmd('send-keys', '-t', name, '-l', line)
        self.cmd('send-keys', '-t', name, 'Enter')

    def keys(self, name, *keys):
        self.cmd('send-keys', '-t', name, *keys)

    def exit_status(self, name, timeout=TIMEOUT):
        """The program's exit status once it has ended."""
        path = os.path.join(self.dir, '%s.status' % name)

        def ended():
            try:
                with open(path) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return None
        return int(wait_for(ended, timeout, 'end of %s' % name, interval=0.05))

    def close(self):
        self.cmd('kill-server', check=False)


class InteractiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tui_path()
        cls.server = Server(users=USERS)
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix='hearth-tmux-')
        self.addCleanup(shutil.rmtree, self.work, True)
        self.tmux = Tmux(self.work)
        self.addCleanup(self.tmux.close)
        self.homes = {}

    def tearDown(self):
        self.server.assert_alive()

    def start(self, user, password_in_file=True, extra=()):
        home = Home()
        self.addCleanup(home.close)
        self.homes[user] = home
        home.write_accounts(account_section(self.server, user, user,
                                            USERS[user] if password_in_file else None))
        env = {k: v for k, v in home.env().items()
               if k in ('HOME', 'XDG_CONFIG_HOME', 'XDG_STATE_HOME', 'LC_ALL', 'PATH')}
        env['TERM'] = 'screen'
        self.tmux.start(user, [tui_path()] + list(extra), env)

    def test_two_users_see_presence_and_chat(self):
        t = self.tmux
        a, b = 'alice@%s' % DOMAIN, 'bob@%s' % DOMAIN
        self.start('alice')
        self.start('bob')
        t.wait_screen('alice', r'^hearth: online as %s/\S+' % a)
        t.wait_screen('bob', r'^hearth: online as %s/\S+' % b)
        t.wait_screen('alice', r'^contacts \(0\):')

        # alice adds bob; bob accepts (and asks back); alice accepts.
        t.type('alice', '/add %s Bob' % b)
        t.wait_screen('bob', r'^\* %s asks to see your presence' % a)
        t.type('bob', '/accept %s' % a)
        t.wait_screen('alice', r'^\* %s lets you see their presence' % b)
        t.wait_screen('alice', r'^\* %s asks to see your presence' % b)
        t.type('alice', '/accept %s' % b)
        # Each sees the other online, in the stream of events and in the contact list.
        t.wait_screen('alice', r'^\* %s is online$' % b)
        t.wait_screen('bob', r'^\* %s is online$' % a)
        t.type('alice', '/roster')
        t.wait_screen('alice', r'^contacts \(1\):\n  %s +Bob +online +both' % re.escape(b))
        t.type('bob', '/roster')
        t.wait_screen('bob', r'^contacts \(1\):\n  %s +online +both' % re.escape(a))

        # alice writes; bob sees it arrive; his plain line answers the conversation it opened.
        t.type('alice', '/msg %s hello bob' % b)
        t.wait_screen('alice', r'^\[\d\d:\d\d\] me -> %s: hello bob$' % b)
        t.wait_screen('bob', r'^\[\d\d:\d\d\] %s: hello bob$' % a)
        t.wait_screen('bob', r'^%s> $' % a)
        t.type('bob', 'hi alice, all well?')
        t.wait_screen('alice', r'^\[\d\d:\d\d\] %s: hi alice, all well\?$' % b)

        # A status change shows on the other side, as an event and in the list.
        t.type('bob', '/status away at lunch')
        t.wait_screen('bob', r'^\* your status: away: at lunch$')
        t.wait_screen('alice', r'^\* %s is away: at lunch$' % b)
        t.type('alice', '/roster')
        t.wait_screen('alice', r'^  %s +Bob +away: at lunch +both' % re.escape(b))

        # A line typed half-way is kept while a message arrives above it.
        t.keys('alice', '-l', 'half a li')
        t.wait_screen('alice', r'^%s> half a li$' % b)
        t.type('bob', 'are you there?')
        t.wait_screen('alice', r'^\[\d\d:\d\d\] %s: are you there\?\n%s> half a li$' % (b, b))
        t.type('alice', 'ne')
        t.wait_screen('bob', r'^\[\d\d:\d\d\] %s: half a line$' % a)

        # /quit logs out: bob sees alice go; both end with status 0.
        t.type('alice', '/quit')
        self.assertEqual(t.exit_status('alice'), 0)
        t.wait_screen('bob', r'^\* %s is offline$' % a)
        t.keys('bob', 'C-d')
        self.assertEqual(t.exit_status('bob'), 0)

        # The history of what was typed, private to its owner.
        hist = os.path.join(self.homes['alice'].state, 'hearth', 'history')
        self.assertEqual(os.stat(hist).st_mode & 0o777, 0o600)
        with open(hist) as f:
            self.assertIn('/add\\040%s\\040Bob' % b, f.read())

    def test_password_prompt_without_echo(self):
        t = self.tmux
        self.start('carol', password_in_file=False)
        t.wait_screen('carol', r'^Password for carol@%s: $' % DOMAIN)
        t.type('carol', USERS['carol'])
        t.wait_screen('carol', r'^hearth: online as carol@%s/' % DOMAIN)
        self.assertNotIn(USERS['carol'], t.screen('carol'))
        t.type('carol', '/join tea@%s carol' % MUC)
        t.wait_screen('carol', r'^\* you are in tea@%s as carol, a new room' % MUC)
        t.type('carol', 'anyone?')
        t.wait_screen('carol', r'^\[\d\d:\d\d\] tea@%s <carol> anyone\?$' % MUC)
        t.type('carol', '/who')
        t.wait_screen('carol', r'^occupants of tea@%s \(1\):\n  carol +moderator +owner' % MUC)
        t.type('carol', '/quit')
        self.assertEqual(t.exit_status('carol'), 0)

    def test_wrong_password_at_the_prompt(self):
        t = self.tmux
        self.start('dave', password_in_file=False)
        t.wait_screen('dave', r'^Password for dave@%s: $' % DOMAIN)
        t.type('dave', 'not-the-password')
        t.wait_screen('dave', r'authentication of dave@%s failed: wrong user name or password'
                      % DOMAIN)
        self.assertEqual(t.exit_status('dave'), EXIT_AUTH)


if __name__ == '__main__':
    main()
