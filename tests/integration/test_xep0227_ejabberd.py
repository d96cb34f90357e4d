"""Moving from Debian's ejabberd: users made on a real ejabberd 23.01 (its own config, Mnesia
spool, Erlang cookie and node name in a temporary directory, listening on loopback only), given
a roster, a vCard, private XML, a pending subscription request and an offline message, exported
by `ejabberdctl export_piefxis`, imported with hearthctl import, then logging in to hearthd with
their old passwords and finding all of it. Skipped (77) without ejabberd or without root (the
ejabberd processes run as the ejabberd user).

Passwords are stored as Debian's /etc/ejabberd/ejabberd.yml has it (auth_password_format:
scram): the export carries SCRAM keys, no password, so the logins are SCRAM-SHA-1 (ann),
SCRAM-SHA-256 (carl, registered after auth_scram_hash: sha256) and PLAIN over TLS (ben, whose
PLAIN login then adds the SHA-256 keys). ejabberd is started once for the class (an Erlang VM
takes seconds) and always stopped before any test runs; the tests read its export."""

import base64
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from hearth import Server, free_port, main, q, to_str
from imlib import IMClient, NS_DELAY, is_msg, is_sub

EJABBERDCTL = '/usr/sbin/ejabberdctl'
NS_NOTES = 'urn:example:hearth-notes'
CTL_TIMEOUT = 30    # one ejabberdctl command: an Erlang VM of its own, about a second
START_TIMEOUT = 30  # ejabberd started and its virtual host up
STOP_TIMEOUT = 15



class Ejabberd:
    """A private ejabberd: config, ejabberdctl config, cookie, spool and logs under dir_, owned
    by the ejabberd user; c2s with STARTTLS required on a free loopback port; Erlang
    distribution on another free loopback port without epmd (ERL_DIST_PORT), under a node name
    of this run only."""

    def __init__(self, dir_):
        self.dir = dir_
        self.node = 'hearthpie%d%s' % (os.getpid(), secrets.token_hex(3))
        self.port = free_port()
        self.tls_port = None
        self.cert = os.path.join(dir_, 'cert.pem')
        self.key = os.path.join(dir_, 'key.pem')
        self.proc = None
        for sub in ('spool', 'logs', 'export'):
            os.makedirs(os.path.join(dir_, sub))
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
                        '-addext', 'subjectAltName=DNS:localhost', '-days', '2',
                        '-keyout', self.key, '-out', self.cert], check=True, capture_output=True)
        # ERL_DIST_PORT: the node listens there (on 127.0.0.1) and ejabberdctl's own VMs dial it
        # directly, so no epmd is started and no other ejabberd's node name matters.
        with open(os.path.join(dir_, 'ejabberdctl.cfg'), 'w') as f:
            f.write('# written by tests/integration/test_xep0227_ejabberd.py\n'
                    'ERLANG_NODE=%s@localhost\n'
                    'ERL_DIST_PORT=%d\n'
                    'ERL_EPMD_ADDRESS=127.0.0.1\n'
                    'ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1}'
                    ' -env ERL_CRASH_DUMP_BYTES 0"\n'
                    'EJABBERD_PID_PATH=%s/ejabberd.pid\n'
                    % (self.node, free_port(), dir_))
        # The node and every ejabberdctl VM read $HOME/.erlang.cookie (HOME is dir_): written here
        # first, so none of them races to create a different one.
        cookie = os.path.join(dir_, '.erlang.cookie')
        with open(cookie, 'w') as f:
            f.write(secrets.token_hex(16).upper())
        os.chmod(cookie, 0o400)
        self.scram_hash('sha')
        ent = pwd.getpwnam('ejabberd')
        for root, dirs, files in os.walk(dir_):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, ent.pw_uid, ent.pw_gid)
        os.chmod(dir_, 0o755)
        self.env = dict(os.environ, HOME=dir_)

    def scram_hash(self, hash_):
        """(Re)writes ejabberd.yml: accounts registered from now on get SCRAM keys of hash_.
        auth_password_format: scram as Debian's /etc/ejabberd/ejabberd.yml has it."""
        path = os.path.join(self.dir, 'ejabberd.yml')
        with open(path, 'w') as f:
            f.write('''# written by tests/integration/test_xep0227_ejabberd.py
hosts: [localhost]
loglevel: info
certfiles:
  - "{cert}"
  - "{key}"
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
s2s_access: none
auth_method: internal
auth_password_format: scram
auth_scram_hash: {hash}
modules:
  mod_admin_extra: {{}}
  mod_offline: {{}}
  mod_ping: {{}}
  mod_private: {{}}
  mod_roster: {{}}
  mod_vcard: {{}}
'''.format(cert=self.cert, key=self.key, port=self.port, hash=hash_))
        if os.getuid() == 0:
            ent = pwd.getpwnam('ejabberd')
            os.chown(path, ent.pw_uid, ent.pw_gid)

    def command(self, *args):
        return [EJABBERDCTL, '--config-dir', self.dir, '--spool',
                os.path.join(self.dir, 'spool'), '--logs', os.path.join(self.dir, 'logs')] \
            + list(args)

    def ctl(self, *args, check=True):
        r = subprocess.run(self.command(*args), user='ejabberd', group='ejabberd', env=self.env,
                           cwd=self.dir, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=CTL_TIMEOUT)
        if check and r.returncode != 0:
            raise AssertionError('ejabberdctl %s: exit %d: %s%s\n%s'
                                 % (' '.join(args), r.returncode, r.stdout, r.stderr,
                                    self.log()))
        return r

    def start(self):
        out = open(os.path.join(self.dir, 'ejabberd.out'), 'wb')
        # A session of its own: the script, erl, beam.smp and its helpers go together.
        self.proc = subprocess.Popen(self.command('foreground'), user='ejabberd',
                                     group='ejabberd', env=self.env, cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        # `status` answers 0 once the ejabberd application and its hosts have started.
        while self.ctl('status', check=False).returncode != 0:
            if self.proc.poll() is not None:
                raise AssertionError('ejabberd exited (%d): %s' % (self.proc.returncode,
                                                                   self.log()))
            if time.monotonic() > deadline:
                raise AssertionError('ejabberd did not start: %s' % self.log())
            time.sleep(0.2)

    def log(self):
        text = ''
        for name in ('ejabberd.out', 'logs/ejabberd.log', 'logs/error.log'):
            try:
                with open(os.path.join(self.dir, name), errors='replace') as f:
                    text += '--- %s\n%s' % (name, f.read()[-5000:])
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        """ejabberdctl stop, then the process group SIGTERMed and SIGKILLed, each wait bounded."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.ctl('stop', check=False)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self.proc.wait(STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    pass
        # Helpers (erl_child_setup, inet_gethost) left in the group go too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(STOP_TIMEOUT)


class EjabberdImportTest(unittest.TestCase):
    PW = {'ann': 'ann old pw', 'ben': 'ben old pw', 'carl': 'carl old pw'}

    @classmethod
    def setUpClass(cls):
        if not os.access(EJABBERDCTL, os.X_OK):
            raise unittest.SkipTest('%s is not installed (apt-get install ejabberd)'
                                    % EJABBERDCTL)
        try:
            pwd.getpwnam('ejabberd')
        except KeyError:
            raise unittest.SkipTest('no ejabberd user')
        if os.getuid() != 0:
            raise unittest.SkipTest('ejabberd runs as the ejabberd user: needs root')
        cls.dir = tempfile.mkdtemp(prefix='hearth-ejabberd-pie-')
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        os.chmod(cls.dir, 0o711)  # the ejabberd user reaches its directory inside
        e = Ejabberd(os.path.join(cls.dir, 'ejabberd'))
        try:
            cls.export = cls.make_ejabberd_data(e)
        finally:
            e.stop()
        cls.ejabberd_log = e.log()

    @classmethod
    def make_ejabberd_data(cls, e):
        """ann and ben (SCRAM-SHA-1, Debian's default) contacts both ways with names and
        groups; ann's vCard and private XML; carl (SCRAM-SHA-256) asks ann for her presence and
        leaves her a message while she is offline. Returns the export's file names."""
        e.start()
        for user in ('ann', 'ben'):
            e.ctl('register', user, 'localhost', cls.PW[user])
        e.ctl('add_rosteritem', 'ann', 'localhost', 'ben', 'localhost', 'Ben from before',
              'Old friends;Work & play', 'both')
        e.ctl('add_rosteritem', 'ben', 'localhost', 'ann', 'localhost', 'Ann', 'Family', 'both')
        e.ctl('set_vcard', 'ann', 'localhost', 'FN', 'Ann <Ejabberd>')
        e.ctl('private_set', 'ann', 'localhost',
              "<notes xmlns='%s'><n>from ejabberd</n></notes>" % NS_NOTES)
        e.scram_hash('sha256')
        e.ctl('reload_config')
        e.ctl('register', 'carl', 'localhost', cls.PW['carl'])
        c = IMClient(e)
        try:
            c.login('carl', cls.PW['carl'], resource='old', mech='SCRAM-SHA-256')
            c.send("<presence to='ann@localhost' type='subscribe'/>")
            c.send("<message to='ann@localhost' type='chat' id='while-out'><body>sent to "
                   "ejabberd &amp; kept</body></message>")
            c.sync()
            # ejabberd has taken the request when carl's roster shows it pending out.
            deadline = time.monotonic() + 10
            while c.roster().get('ann@localhost', {}).get('ask') != 'subscribe':
                if time.monotonic() > deadline:
                    raise AssertionError('ejabberd did not record the request')
                time.sleep(0.05)
        finally:
            c.close()
        out = os.path.join(e.dir, 'export')
        e.ctl('export_piefxis', out)
        files = sorted(glob.glob(os.path.join(out, '*.xml')))
        if len(files) != 2:
            raise AssertionError('export_piefxis wrote %r' % files)
        # DIR/<stamp>.xml includes DIR/<stamp>_localhost.xml.
        index, host = files
        if not host.endswith('_localhost.xml'):
            raise AssertionError('export_piefxis wrote %r' % files)
        return {'index': index, 'host': host}

    def read(self, which):
        with open(self.export[which]) as f:
            return f.read()

    def test_export_shape(self):
        """What ejabberd 23.01 writes, as docs/operations.md and docs/architecture.md say."""
        index = self.read('index')
        self.assertIn("<server-data xmlns='urn:xmpp:pie:0'", index)
        self.assertIn("<xi:include href='%s'/>" % os.path.basename(self.export['host']), index)
        host = self.read('host')
        self.assertRegex(host, r"^<\?xml[^>]*\?><host xmlns='urn:xmpp:pie:0'[^>]* jid='localhost'>")
        self.assertNotIn('password=', host)
        self.assertEqual(len(re.findall(r"mechanism='SCRAM-SHA-1'", host)), 2, host)
        self.assertEqual(len(re.findall(r"mechanism='SCRAM-SHA-256'", host)), 1, host)
        # Each SCRAM value is base64 of the base64 text ejabberd keeps.
        for key in re.findall(r'<server-key>([^<]*)</server-key>', host):
            self.assertIn(len(base64.b64decode(base64.b64decode(key, validate=True),
                                               validate=True)), (20, 32))
        self.assertIn("<presence to='ann@localhost' from='carl@localhost' type='subscribe' "
                      "xmlns='jabber:client'/>", host)
        self.assertIn('<offline-messages>', host)

    def new_server(self):
        s = Server()
        self.addCleanup(s.close)
        return s

    def test_host_file_imports(self):
        """The host file alone, or with the index that includes it (read once)."""
        for files in ([self.export['host']], [self.export['index'], self.export['host']]):
            s = self.new_server()
            r = s.ctl('import', *files)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('3 accounts imported (3 contacts, 1 offline messages)', r.stderr)

    def test_ejabberd_export_imports(self):
        s = self.new_server()
        r = s.ctl('import', self.export['index'])
        self.assertEqual(r.returncode, 0, r.stderr + self.ejabberd_log)
        self.assertIn('3 accounts imported (3 contacts, 1 offline messages)', r.stderr)
        s.start()

        # ann: SCRAM-SHA-1 keys from ejabberd.
        a = IMClient(s)
        self.addCleanup(a.close)
        a.login('ann', self.PW['ann'], resource='new', mech='SCRAM-SHA-1')
        roster = a.roster()
        self.assertEqual(sorted(roster), ['ben@localhost'], roster)
        ben = roster['ben@localhost']
        self.assertEqual((ben['name'], ben['groups'], ben['subscription'], ben['ask']),
                         ('Ben from before', ['Old friends', 'Work & play'], 'both', None))
        v = a.iq_ok('get', "<vCard xmlns='vcard-temp'/>")
        self.assertEqual(v.findtext('{vcard-temp}vCard/{vcard-temp}FN'), 'Ann <Ejabberd>',
                         to_str(v))
        pr = a.iq_ok('get', "<query xmlns='jabber:iq:private'><notes xmlns='%s'/></query>"
                     % NS_NOTES)
        self.assertEqual(pr.findtext('{jabber:iq:private}query/{%s}notes/{%s}n'
                                     % (NS_NOTES, NS_NOTES)), 'from ejabberd', to_str(pr))
        a.presence()
        m = a.wait(lambda st: is_msg(st, id_='while-out'), what="carl's offline message")
        self.assertEqual(m.get('from'), 'carl@localhost/old')
        self.assertEqual(m.findtext('{jabber:client}body'), 'sent to ejabberd & kept')
        delays = m.findall(q(NS_DELAY, 'delay'))
        self.assertEqual(len(delays), 1, to_str(m))
        # The time ejabberd took the message, as its export says.
        self.assertIn("stamp='%s'" % delays[0].get('stamp'), self.read('host'))
        a.wait(lambda st: is_sub(st, 'subscribe', 'carl@localhost'),
               what="carl's request from ejabberd")

        # ben: PLAIN over TLS with the old password; that gives him SCRAM-SHA-256 keys.
        b = IMClient(s)
        self.addCleanup(b.close)
        b.login('ben', self.PW['ben'], resource='new', mech='PLAIN')
        ann = b.roster()['ann@localhost']
        self.assertEqual((ann['name'], ann['groups'], ann['subscription']),
                         ('Ann', ['Family'], 'both'))
        s.wait_log(r'ben: SCRAM-SHA-256 keys added')
        b2 = IMClient(s)
        self.addCleanup(b2.close)
        b2.login('ben', self.PW['ben'], resource='again', mech='SCRAM-SHA-256')

        # carl: SCRAM-SHA-256 keys from ejabberd; his request to ann still pending.
        c = IMClient(s)
        self.addCleanup(c.close)
        c.login('carl', self.PW['carl'], resource='new', mech='SCRAM-SHA-256')
        item = c.roster()['ann@localhost']
        self.assertEqual((item['subscription'], item['ask']), ('none', 'subscribe'))


if __name__ == '__main__':
    main()
