"""hearthctl export and import in XEP-0227's portable format: a round trip
through a real hearthd (on either storage driver), the logins of accounts
that arrive with SCRAM-SHA-1 keys only, and bad files refused whole with an
error that names the element, nothing written."""

import base64
import hashlib
import hmac
import os
import re
import tempfile
import unittest

from hearth import Client, SaslFailure, Server, q, to_str, main
from imlib import IMClient, NS_DELAY, is_msg, is_sub

NS_VCARD = 'vcard-temp'
NS_PRIVATE = 'jabber:iq:private'
NS_NOTES = 'urn:example:hearth-notes'
PIE = 'urn:xmpp:pie:0'


def scram_keys(password, hash_='sha1', salt=b'0123456789abcdef', iters=4096):
    """The SCRAM keys another server would have stored for password: (salt, server key, stored
    key), raw."""
    salted = hashlib.pbkdf2_hmac(hash_, password.encode(), salt, iters)
    client_key = hmac.new(salted, b'Client Key', hash_).digest()
    stored = hashlib.new(hash_, client_key).digest()
    server = hmac.new(salted, b'Server Key', hash_).digest()
    return salt, server, stored


def scram_sha1(password, salt=b'0123456789abcdef', iters=4096, hash_='sha1', twice=False):
    """<scram-credentials> as XEP-0227 has them; twice: each value base64-encoded twice, as
    ejabberd 23.01 writes them (it keeps them in base64 and encodes them again)."""
    mech = {'sha1': 'SCRAM-SHA-1', 'sha256': 'SCRAM-SHA-256'}[hash_]
    b64 = lambda b: base64.b64encode(base64.b64encode(b) if twice else b).decode()
    salt, server, stored = scram_keys(password, hash_, salt, iters)
    return ("<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='%s'>"
            "<iter-count>%d</iter-count><salt>%s</salt><server-key>%s</server-key>"
            "<stored-key>%s</stored-key></scram-credentials>" % (mech, iters, b64(salt),
                                                                b64(server), b64(stored)))


def pie(users_xml, host='localhost'):
    return ("<?xml version='1.0'?>\n<server-data xmlns='%s'><host jid='%s'>%s</host>"
            "</server-data>\n" % (PIE, host, users_xml))


class Xep0227Test(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hearth-pie-')
        self.addCleanup(lambda: __import__('shutil').rmtree(self.dir, True))

    def server(self, **kw):
        s = Server(**kw)
        self.addCleanup(s.close)
        return s

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w' if isinstance(text, str) else 'wb') as f:
            f.write(text)
        return path

    def ok(self, r):
        self.assertEqual(r.returncode, 0, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        return r

    def client(self, s, user, pw, mech='SCRAM-SHA-256', resource='r'):
        c = IMClient(s)
        self.addCleanup(c.close)
        c.login(user, pw, resource=resource, mech=mech)
        return c

    def login_fails(self, s, user, pw, mech):
        c = Client(s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.open_stream()
        with self.assertRaises(SaslFailure) as cm:
            if mech == 'PLAIN':
                c.auth_plain(user, pw)
            else:
                c.auth_scram(user, pw, mech)
        return cm.exception.condition

    def accounts(self, s):
        return sorted(r[0] for r in s.db_rows('SELECT username FROM accounts'))

    # -- round trip ----------------------------------------------------------

    def fill(self, s):
        """alice: a roster (name, groups), a request to bob, a vCard, private XML; bob (offline)
        gets a message and the request."""
        a = self.client(s, 'alice', 'wonderland')
        a.iq_ok('set', "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob B'>"
                       "<group>Friends</group><group>Work &amp; play</group></item></query>")
        a.iq_ok('set', "<query xmlns='jabber:iq:roster'><item jid='zoe@elsewhere.example'/>"
                       "</query>")
        a.iq_ok('set', "<vCard xmlns='vcard-temp'><FN>Alice &lt;A&gt;</FN><NICKNAME>al</NICKNAME>"
                       "</vCard>")
        a.iq_ok('set', "<query xmlns='jabber:iq:private'><notes xmlns='%s'><n>kept</n></notes>"
                       "</query>" % NS_NOTES)
        a.send("<presence to='bob@localhost' type='subscribe'/>")
        a.send("<message to='bob@localhost' type='chat' id='m1'><body>while you were out "
               "&amp; about</body></message>")
        a.sync()
        deadline_rows = lambda: s.db_rows('SELECT COUNT(*) FROM offline_messages')[0][0]
        import time
        end = time.monotonic() + 10
        while deadline_rows() < 1:
            self.assertLess(time.monotonic(), end, 'the offline message was not stored')
            time.sleep(0.02)
        a.logout()

    def export(self, s, name):
        path = os.path.join(self.dir, name)
        self.ok(s.ctl('export', path))
        with open(path) as f:
            return path, f.read()

    def test_round_trip(self):
        s1 = self.server(users={'alice': 'wonderland', 'bob': 'builder'})
        s1.start()
        self.fill(s1)
        s1.stop()
        path, first = self.export(s1, 'first.xml')
        self.assertIn("<user name='alice'>", first)
        self.assertIn("mechanism='SCRAM-SHA-256'", first)

        s2 = self.server()
        r = self.ok(s2.ctl('import', path))
        self.assertIn('2 accounts imported', r.stderr)
        self.assertEqual(self.accounts(s2), ['alice', 'bob'])
        # The same export again, but for the roster's version (items are numbered anew).
        _, second = self.export(s2, 'second.xml')
        strip = lambda t: re.sub(r" version='\d+'", '', t)
        self.assertEqual(strip(second), strip(first))

        s2.start()
        a = self.client(s2, 'alice', 'wonderland')
        roster = a.roster()
        self.assertEqual(roster['bob@localhost']['name'], 'Bob B')
        self.assertEqual(roster['bob@localhost']['groups'], ['Friends', 'Work & play'])
        self.assertEqual(roster['bob@localhost']['ask'], 'subscribe')
        self.assertIn('zoe@elsewhere.example', roster)
        v = a.iq_ok('get', "<vCard xmlns='vcard-temp'/>")
        self.assertEqual(v.findtext('{vcard-temp}vCard/{vcard-temp}FN'), 'Alice <A>')
        p = a.iq_ok('get', "<query xmlns='jabber:iq:private'><notes xmlns='%s'/></query>"
                    % NS_NOTES)
        self.assertEqual(p.findtext('{%s}query/{%s}notes/{%s}n' % (NS_PRIVATE, NS_NOTES,
                                                                  NS_NOTES)), 'kept')
        b = self.client(s2, 'bob', 'builder', mech='SCRAM-SHA-1')
        b.roster_get()
        b.presence()
        m = b.wait(lambda st: is_msg(st, id_='m1'), what='the offline message')
        self.assertEqual(m.findtext('{jabber:client}body'), 'while you were out & about')
        delays = m.findall(q(NS_DELAY, 'delay'))
        self.assertEqual(len(delays), 1, to_str(m))
        self.assertIn('stamp=\'%s\'' % delays[0].get('stamp'), first)
        b.wait(lambda st: is_sub(st, 'subscribe', 'alice@localhost'),
               what="alice's subscription request")

    def test_refused_while_running(self):
        s = self.server(users={'alice': 'wonderland'})
        path = self.write('one.xml', pie("<user name='zed' password='pw'/>"))
        s.start()
        for args in (('import', path), ('export', os.path.join(self.dir, 'x.xml'))):
            r = s.ctl(*args)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, 'hearthd is running .*stop it first')
        self.assertFalse(os.path.exists(os.path.join(self.dir, 'x.xml')))

    def test_existing_account(self):
        s = self.server(users={'alice': 'wonderland'})
        path = self.write('two.xml', pie("<user name='carl' password='pw-carl'/>"
                                         "<user name='alice' password='other'/>"))
        r = s.ctl('import', path)
        self.assertEqual(r.returncode, 1)
        self.assertIn('the account alice@localhost exists already; nothing was imported',
                      r.stderr)
        self.assertEqual(self.accounts(s), ['alice'])
        r = self.ok(s.ctl('import', '--skip-existing', path))
        self.assertIn('skipped alice@localhost', r.stderr)
        self.assertEqual(self.accounts(s), ['alice', 'carl'])
        s.start()
        self.client(s, 'alice', 'wonderland')  # untouched
        self.client(s, 'carl', 'pw-carl')      # a clear password: both families
        self.client(s, 'carl', 'pw-carl', mech='SCRAM-SHA-1')

    # -- accounts with SCRAM-SHA-1 keys only ---------------------------------

    def test_sha1_only_account(self):
        s = self.server()
        path = self.write('sha1.xml', pie("<user name='olga'>%s</user>" % scram_sha1('old pw')))
        r = self.ok(s.ctl('import', path))
        self.assertIn('SCRAM-SHA-1 keys only', r.stderr)
        s.start()
        self.client(s, 'olga', 'old pw', mech='SCRAM-SHA-1')
        self.assertEqual(self.login_fails(s, 'olga', 'old pw', 'SCRAM-SHA-256'), 'not-authorized')
        self.assertEqual(self.login_fails(s, 'olga', 'wrong', 'PLAIN'), 'not-authorized')
        self.assertEqual(s.db_rows('SELECT COALESCE(sha256_iter, 0) FROM accounts')[0][0], 0)
        # PLAIN reveals the password: the SHA-256 keys are added, and from then on it works.
        self.client(s, 'olga', 'old pw', mech='PLAIN')
        s.wait_log(r'olga.*SCRAM-SHA-256 keys added')
        self.client(s, 'olga', 'old pw', mech='SCRAM-SHA-256')
        self.client(s, 'olga', 'old pw', mech='SCRAM-SHA-1')
        self.assertEqual(self.login_fails(s, 'olga', 'wrong', 'SCRAM-SHA-256'), 'not-authorized')

    # -- ejabberd's shape (ejabberdctl export_piefxis, 23.01) -----------------
    # An index <server-data> that only includes one file per host; each host file has <host> as
    # its root; SCRAM values base64-encoded twice; messages and requests in jabber:client.

    XI = 'http://www.w3.org/2001/XInclude'

    def ejabberd_host(self, name, users_xml, host='localhost'):
        return self.write(name, "<?xml version='1.0' encoding='UTF-8'?><host xmlns='%s' "
                                "xmlns:xi='%s' jid='%s'>%s</host>" % (PIE, self.XI, host,
                                                                     users_xml))

    def ejabberd_index(self, name, *hrefs):
        return self.write(name, "<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='%s' "
                                "xmlns:xi='%s'>%s</server-data>"
                                % (PIE, self.XI, ''.join("<xi:include href='%s'/>" % h
                                                         for h in hrefs)))

    EJ_ANN = ("<user name='ann'>%s<offline-messages><message to='ann@localhost' "
              "from='ben@localhost/x' type='chat' id='m1' xmlns='jabber:client'><delay "
              "from='localhost' stamp='2026-12-06T13:37:46.199135Z' xmlns='urn:xmpp:delay'>"
              "Offline storage</delay><body>kept</body></message></offline-messages>"
              "<query xmlns='jabber:iq:roster'><item subscription='both' name='Ben' "
              "jid='ben@localhost'><group>Old</group></item></query></user>"
              "<user name='ben'>%s<query xmlns='jabber:iq:roster'/><presence to='ben@localhost' "
              "from='cid@localhost' type='subscribe' xmlns='jabber:client'/></user>")

    def ej_users(self):
        return self.EJ_ANN % (scram_sha1('ann pw', twice=True),
                              scram_sha1('ben pw', hash_='sha256', twice=True))

    def test_ejabberd_host_file(self):
        s = self.server()
        path = self.ejabberd_host('x_localhost.xml', self.ej_users())
        r = self.ok(s.ctl('import', path))
        self.assertIn('2 accounts imported (1 contacts, 1 offline messages)', r.stderr)
        s.start()
        a = self.client(s, 'ann', 'ann pw', mech='SCRAM-SHA-1')
        self.assertEqual(a.roster()['ben@localhost']['groups'], ['Old'])
        a.presence()
        m = a.wait(lambda st: is_msg(st, id_='m1'), what='the offline message')
        self.assertEqual(m.find(q(NS_DELAY, 'delay')).get('stamp'),
                         '2026-12-06T13:37:46.199135Z')
        b = self.client(s, 'ben', 'ben pw', mech='SCRAM-SHA-256')
        b.roster_get()
        b.presence()
        b.wait(lambda st: is_sub(st, 'subscribe', 'cid@localhost'), what="cid's request")

    def test_ejabberd_host_file_bad_host(self):
        path = self.ejabberd_host('x_elsewhere.xml', self.ej_users(), host='elsewhere.example')
        self.refused(open(path).read(), r"bad\.xml: <host jid='elsewhere.example'>: this server is "
                                        r"localhost")

    def test_ejabberd_index_file(self):
        self.ejabberd_host('20261206-133747_localhost.xml', self.ej_users())
        index = self.ejabberd_index('20261206-133747.xml', '20261206-133747_localhost.xml')
        s = self.server()
        r = self.ok(s.ctl('import', index))
        self.assertIn('2 accounts imported', r.stderr)
        self.assertEqual(self.accounts(s), ['ann', 'ben'])
        # The index and the file it includes, as `hearthctl import DIR/*.xml` gives them: each
        # is read once.
        s2 = self.server()
        r = self.ok(s2.ctl('import', index, os.path.join(self.dir,
                                                         '20261206-133747_localhost.xml')))
        self.assertIn('2 accounts imported', r.stderr)
        self.assertRegex(r.stderr, r'20261206-133747_localhost\.xml: read already')

    def test_ejabberd_index_bad_include(self):
        for href in ('/etc/passwd', '../x.xml', 'sub/../../x.xml', 'http://example.org/x.xml'):
            self.refused("<server-data xmlns='%s' xmlns:xi='%s'><xi:include href='%s'/>"
                         "</server-data>" % (PIE, self.XI, href),
                         r"bad\.xml: <xi:include href='%s'>: not a file name relative to "
                         r"this file's directory" % re.escape(href))
        self.refused("<server-data xmlns='%s' xmlns:xi='%s'><xi:include href='missing.xml'/>"
                     "</server-data>" % (PIE, self.XI),
                     r"missing\.xml: cannot open: No such file")
        self.refused("<server-data xmlns='%s' xmlns:xi='%s'><xi:include href='a.xml' "
                     "parse='text'/></server-data>" % (PIE, self.XI),
                     r"<xi:include href='a.xml'>: parse='text'")
        self.refused("<server-data xmlns='%s' xmlns:xi='%s'/>" % (PIE, self.XI),
                     r'bad\.xml: no <host> in <server-data>')

    def test_ejabberd_scram_values_twice_encoded(self):
        s = self.server()
        path = self.write('twice.xml', pie(self.ej_users()))
        self.ok(s.ctl('import', path))
        s.start()
        self.client(s, 'ann', 'ann pw', mech='SCRAM-SHA-1')
        self.client(s, 'ben', 'ben pw', mech='SCRAM-SHA-256')
        self.assertEqual(self.login_fails(s, 'ann', 'other', 'SCRAM-SHA-1'), 'not-authorized')
        # Only one of the keys twice encoded: not ejabberd's shape, refused.
        half = scram_sha1('p', twice=True).replace(
            re.search('<stored-key>(.*)</stored-key>', scram_sha1('p', twice=True)).group(1),
            re.search('<stored-key>(.*)</stored-key>', scram_sha1('p')).group(1))
        self.refused(pie("<user name='x'>%s</user>" % half),
                     r"<scram-credentials mechanism='SCRAM-SHA-1'>: <server-key> is not base64 "
                     r"of 20 bytes")


    def test_ejabberd_scram_password_attribute(self):
        """Older ejabberd exporters: password='scram:[sha256,]StoredKey,ServerKey,Salt,Iter'."""
        def attr(pw, hash_):
            b64 = lambda b: base64.b64encode(base64.b64encode(b)).decode()
            salt, server, stored = scram_keys(pw, hash_)
            return 'scram:%s%s,%s,%s,4096' % ('' if hash_ == 'sha1' else hash_ + ',', b64(stored),
                                              b64(server), b64(salt))
        s = self.server()
        path = self.write('old.xml', pie("<user name='dora' password='%s'/><user name='eli' "
                                         "password='%s'/>" % (attr('dora pw', 'sha1'),
                                                              attr('eli pw', 'sha256'))))
        self.ok(s.ctl('import', path))
        s.start()
        self.client(s, 'dora', 'dora pw', mech='SCRAM-SHA-1')
        self.client(s, 'eli', 'eli pw', mech='SCRAM-SHA-256')
        self.assertEqual(self.login_fails(s, 'eli', 'eli pw', 'SCRAM-SHA-1'), 'not-authorized')
        self.refused(pie("<user name='x' password='scram:abc,def'/>"),
                     r"<user name='x'>/password='scram:\.\.\.': not "
                     r"scram:\[sha256,\]StoredKey,ServerKey,Salt,IterationCount")

    # -- bad files: refused whole, with the element named, nothing written ---

    def refused(self, text, pattern, *opts):
        s = self.server(users={'alice': 'wonderland'})
        path = self.write('bad.xml', text)
        r = s.ctl('import', *opts, path)
        self.assertEqual(r.returncode, 1, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        self.assertRegex(r.stderr, pattern)
        self.assertEqual(self.accounts(s), ['alice'], 'something was imported')
        self.assertEqual(s.db_rows('SELECT COUNT(*) FROM roster_items')[0][0], 0)
        return r

    GOOD = "<user name='first' password='pw'><query xmlns='jabber:iq:roster'>" \
           "<item jid='alice@localhost' subscription='both'/></query></user>"

    def test_malformed_xml(self):
        self.refused(pie(self.GOOD + "<user name='b'><vCard xmlns='vcard-temp'></user>"),
                     r'bad\.xml: not a well-formed XEP-0227 file near byte \d+')

    def test_truncated(self):
        self.refused(pie(self.GOOD)[:-20], r'bad\.xml: the file ends before </server-data>')

    def test_entity_declaration(self):
        self.refused("<?xml version='1.0'?><!DOCTYPE server-data [<!ENTITY boom 'x'>]>"
                     + pie(self.GOOD.replace("password='pw'", "password='&boom;'")),
                     r'bad\.xml: not a well-formed XEP-0227 file near byte \d+: DTD not allowed')

    def test_user_without_name(self):
        self.refused(pie(self.GOOD + "<user password='x'/>"),
                     r"<host jid='localhost'>/<user> number 2: no name attribute")

    def test_too_large(self):
        self.refused(pie(self.GOOD + "<user name='big' password='x'/>"),
                     r'more than the 100 bytes an import file may have \(--max-bytes\)',
                     '--max-bytes', '100')
        body = 'x' * (1024 * 1024 + 10)
        self.refused(pie(self.GOOD + "<user name='big'><offline-messages><message "
                         "xmlns='jabber:client'><body>%s</body></message></offline-messages>"
                         "</user>" % body),
                     r"<user name='big'>/<offline-messages>/<message> number 1: larger than "
                     r"1048576 bytes")

    def test_bad_elements(self):
        self.refused(pie(self.GOOD, host='elsewhere.example'),
                     r"<host jid='elsewhere.example'>: this server is localhost")
        self.refused(pie(self.GOOD + "<user name='x'><query xmlns='jabber:iq:roster'>"
                                     "<item jid='a@b' subscription='sometimes'/></query></user>"),
                     r"<user name='x'>/<query xmlns='jabber:iq:roster'>/<item jid='a@b'>: "
                     r"subscription='sometimes'")
        self.refused(pie(self.GOOD + "<user name='x'>%s</user>"
                         % scram_sha1('p').replace('<stored-key>', '<stored-key>!!')),
                     r"<scram-credentials mechanism='SCRAM-SHA-1'>: <stored-key> is not base64")
        self.refused(pie(self.GOOD + "<user name='first' password='again'/>"),
                     r"<user name='first'>: the account is given twice")
        self.refused("<server-data xmlns='urn:example:other'/>",
                     r"the root element: <server-data xmlns='urn:example:other'> where "
                     r"<server-data xmlns='urn:xmpp:pie:0'> or <host xmlns='urn:xmpp:pie:0'> "
                     r"is expected")


if __name__ == '__main__':
    main()
