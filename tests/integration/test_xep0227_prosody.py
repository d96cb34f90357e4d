"""Moving from Debian's Prosody: users made and used on a real Prosody (its
own config and data directory on loopback), exported by prosody-migrator's
xep0227 driver, imported with hearthctl import, then logging in to hearthd
with their old passwords (SCRAM-SHA-1 and PLAIN over TLS) and finding their
roster, pending subscription, vCard and private XML. Skipped (77) without
Prosody.

Prosody 0.12's xep0227 driver has no handler for offline messages (the
'offline' store is refused as unsupported-datastore), so none can come this
way; test_xep0227 covers offline messages in XEP-0227 files."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from clientlib import Prosody
from hearth import Server, main, q, to_str
from imlib import IMClient, is_sub

PROSODY = Prosody.BINARY
PROSODYCTL = Prosody.CTL
MIGRATOR = '/usr/bin/prosody-migrator'
# prosody-migrator writes XEP-0227 files into Prosody's compiled-in data directory, one per
# user (<user>@<host>.xml), whatever the migrator config says.
MIGRATOR_OUT = '/var/lib/prosody'
NS_NOTES = 'urn:example:hearth-notes'



class ProsodyImportTest(unittest.TestCase):
    def setUp(self):
        for path in (PROSODY, PROSODYCTL, MIGRATOR):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest('%s is not installed (apt-get install prosody)' % path)
        if os.getuid() != 0 and not os.access(MIGRATOR_OUT, os.W_OK):
            raise unittest.SkipTest('prosody-migrator writes to %s, not writable here'
                                    % MIGRATOR_OUT)
        self.dir = tempfile.mkdtemp(prefix='hearth-prosody-pie-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Names of this run only: the migrator's output directory is shared.
        self.ann = 'ann%d' % os.getpid()
        self.ben = 'ben%d' % os.getpid()
        self.outputs = [os.path.join(MIGRATOR_OUT, '%s@localhost.xml' % u)
                        for u in (self.ann, self.ben)]
        for p in self.outputs:
            if os.path.exists(p):
                os.unlink(p)
        self.addCleanup(lambda: [os.unlink(p) for p in self.outputs if os.path.exists(p)])

    def prosody_client(self, p, user, pw):
        c = IMClient(p)
        self.addCleanup(c.close)
        c.login(user, pw, resource='old', mech='SCRAM-SHA-1')
        return c

    def make_prosody_data(self):
        # Roster, vCard, private XML and offline storage; PLAIN over TLS only.
        p = Prosody({}, modules=('roster', 'saslauth', 'tls', 'disco', 'ping', 'vcard',
                                 'private', 'offline'),
                    options='allow_unencrypted_plain_auth = false\n')
        self.addCleanup(p.close)
        p.register(self.ann, 'ann old pw')
        p.register(self.ben, 'ben old pw')
        p.start()
        ann_jid, ben_jid = '%s@localhost' % self.ann, '%s@localhost' % self.ben
        a = self.prosody_client(p, self.ann, 'ann old pw')
        a.iq_ok('set', "<query xmlns='jabber:iq:roster'><item jid='%s' name='Ben from before'>"
                       "<group>Old friends</group></item></query>" % ben_jid)
        a.iq_ok('set', "<vCard xmlns='vcard-temp'><FN>Ann Prosody</FN></vCard>")
        a.iq_ok('set', "<query xmlns='jabber:iq:private'><notes xmlns='%s'><n>from prosody</n>"
                       "</notes></query>" % NS_NOTES)
        a.send("<presence to='%s' type='subscribe'/>" % ben_jid)
        a.sync()
        # Prosody has taken the request when ann's roster shows it pending out.
        deadline = time.monotonic() + 10
        while a.roster().get(ben_jid, {}).get('ask') != 'subscribe':
            self.assertLess(time.monotonic(), deadline, 'prosody did not record the request')
            time.sleep(0.05)
        a.close()
        p.stop()
        return p

    def export_from_prosody(self, p):
        if os.getuid() == 0:
            # prosody-migrator drops root for the prosody user, who must read the data.
            subprocess.run(['chmod', '-R', 'a+rwX', self.dir, p.dir], check=True)
        cfg = os.path.join(self.dir, 'migrator.cfg.lua')
        with open(cfg, 'w') as f:
            f.write('input {\n  type = "internal";\n  path = "%s";\n'
                    '  hosts = { ["localhost"] = { "accounts", "roster", "vcard", "private" } };\n'
                    '}\noutput {\n  type = "xep0227";\n}\n' % p.data)
        r = subprocess.run([MIGRATOR, '--config', cfg, 'input', 'output'], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in self.outputs:
            self.assertTrue(os.path.exists(path), 'prosody-migrator wrote no %s: %s'
                            % (path, r.stdout + r.stderr))
        files = []
        for path in self.outputs:
            dst = os.path.join(self.dir, os.path.basename(path))
            shutil.copyfile(path, dst)
            files.append(dst)
        return files

    def test_prosody_export_imports(self):
        p = self.make_prosody_data()
        files = self.export_from_prosody(p)
        with open(files[0]) as f:
            ann_xml = f.read()
        self.assertIn("mechanism='SCRAM-SHA-1'", ann_xml)

        s = Server()
        self.addCleanup(s.close)
        r = s.ctl('import', *files)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('2 accounts imported', r.stderr)
        s.start()
        ann_jid, ben_jid = '%s@localhost' % self.ann, '%s@localhost' % self.ben

        a = IMClient(s)
        self.addCleanup(a.close)
        a.login(self.ann, 'ann old pw', resource='new', mech='SCRAM-SHA-1')
        item = a.roster()[ben_jid]
        self.assertEqual(item['name'], 'Ben from before')
        self.assertEqual(item['groups'], ['Old friends'])
        self.assertEqual(item['ask'], 'subscribe')
        v = a.iq_ok('get', "<vCard xmlns='vcard-temp'/>")
        self.assertEqual(v.findtext('{vcard-temp}vCard/{vcard-temp}FN'), 'Ann Prosody',
                         to_str(v))
        pr = a.iq_ok('get', "<query xmlns='jabber:iq:private'><notes xmlns='%s'/></query>"
                     % NS_NOTES)
        self.assertEqual(pr.findtext('{jabber:iq:private}query/{%s}notes/{%s}n'
                                     % (NS_NOTES, NS_NOTES)), 'from prosody', to_str(pr))

        # ben with PLAIN over TLS: the old password, and ann's request is waiting.
        b = IMClient(s)
        self.addCleanup(b.close)
        b.login(self.ben, 'ben old pw', resource='new', mech='PLAIN')
        b.roster_get()
        b.presence()
        b.wait(lambda st: is_sub(st, 'subscribe', ann_jid), what="ann's request from Prosody")
        # The PLAIN login gave ben SCRAM-SHA-256 keys.
        s.wait_log(r'%s: SCRAM-SHA-256 keys added' % self.ben)
        c = IMClient(s)
        self.addCleanup(c.close)
        c.login(self.ben, 'ben old pw', resource='again', mech='SCRAM-SHA-256')


if __name__ == '__main__':
    main()
