"""The small modules: XEP-0092 Software Version, XEP-0202 Entity Time,
XEP-0054 vcard-temp and XEP-0049 Private XML Storage, and their disco#info
features."""

import datetime
import os
import re
import subprocess
import unittest

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_STANZAS, Client, Server, main, q,
                    stanza_error, to_str, wait_for, xml_escape)

USERS = {'alice': 'wonderland', 'bob': 'builder'}
NS_VERSION = 'jabber:iq:version'
NS_TIME = 'urn:xmpp:time'
NS_VCARD = 'vcard-temp'
NS_PRIVATE = 'jabber:iq:private'

ALICE_VCARD = ("<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN>"
               "<N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN><MIDDLE/></N>"
               "<NICKNAME>alice &amp; co</NICKNAME>"
               "<DESC xml:lang='en'>Down the rabbit hole</DESC>"
               "<X xmlns='urn:example:ext' a='1'/></vCard>")


class ModulesBase(unittest.TestCase):
    users = USERS

    def start_server(self, **settings):
        s = Server(users=self.users, **settings)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()
        finally:
            s.close()

    def login(self, server, user, resource=None):
        c = Client(server)
        self.addCleanup(c.close)
        c.login(user, self.users[user], resource=resource)
        return c

    def assert_result(self, r):
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return r

    def assert_error(self, r, cond, text=None):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r)[1], cond, to_str(r))
        if text is not None:
            err = r.find(q(NS_CLIENT, 'error'))
            self.assertEqual(err.findtext(q(NS_STANZAS, 'text')), text, to_str(r))
        return r


# --------------------------------------------------------------------------
# XEP-0092, XEP-0202, disco


class VersionTimeTest(ModulesBase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(users=USERS)
        cls.s.shared = True
        cls.s.start()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()

    def setUp(self):
        self.a = self.login(self.s, 'alice')

    def test_version(self):
        r = self.assert_result(self.a.iq('get', "<query xmlns='%s'/>" % NS_VERSION, to=DOMAIN))
        self.assertEqual(r.get('from'), DOMAIN)
        qy = r.find(q(NS_VERSION, 'query'))
        self.assertIsNotNone(qy, to_str(r))
        self.assertEqual(qy.findtext(q(NS_VERSION, 'name')), 'Hearth')
        out = subprocess.run([self.s.hearthd, '--version'], capture_output=True, text=True).stdout
        self.assertEqual(qy.findtext(q(NS_VERSION, 'version')), out.split()[1])
        uname = os.uname()
        self.assertEqual(qy.findtext(q(NS_VERSION, 'os')), '%s %s' % (uname.sysname, uname.release))

    def test_version_set_is_bad_request(self):
        r = self.a.iq('set', "<query xmlns='%s'/>" % NS_VERSION, to=DOMAIN)
        self.assert_error(r, 'bad-request')

    def test_version_to_account_unavailable(self):
        r = self.a.iq('get', "<query xmlns='%s'/>" % NS_VERSION, to='bob@' + DOMAIN)
        self.assert_error(r, 'service-unavailable')
        r = self.a.iq('get', "<query xmlns='%s'/>" % NS_VERSION)
        self.assert_error(r, 'service-unavailable')

    def test_time(self):
        r = self.assert_result(self.a.iq('get', "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN))
        t = r.find(q(NS_TIME, 'time'))
        self.assertIsNotNone(t, to_str(r))
        tzo = t.findtext(q(NS_TIME, 'tzo'))
        self.assertRegex(tzo or '', r'^[+-]\d\d:\d\d$')
        utc = t.findtext(q(NS_TIME, 'utc')) or ''
        self.assertRegex(utc, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
        when = datetime.datetime.strptime(utc[:19], '%Y-%m-%dT%H:%M:%S').replace(
            tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 60, utc)

    def test_time_set_is_bad_request(self):
        r = self.a.iq('set', "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN)
        self.assert_error(r, 'bad-request')

    def test_time_to_self_unavailable(self):
        r = self.a.iq('get', "<time xmlns='%s'/>" % NS_TIME)
        self.assert_error(r, 'service-unavailable')

    def features(self, to):
        r = self.assert_result(self.a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to))
        query = r.find(q(NS_DISCO_INFO, 'query'))
        return [f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))]

    def test_disco_server_features(self):
        f = self.features(DOMAIN)
        for var in (NS_VERSION, NS_TIME, NS_VCARD, NS_PRIVATE):
            self.assertIn(var, f)
        self.assertEqual(len(f), len(set(f)), f)

    def test_disco_account_features(self):
        f = self.features('bob@' + DOMAIN)
        self.assertIn(NS_VCARD, f)
        self.assertIn(NS_PRIVATE, f)
        self.assertNotIn(NS_VERSION, f)
        self.assertNotIn(NS_TIME, f)


class HideVersionTest(ModulesBase):
    def test_hide_version(self):
        s = self.start_server(server__hide_version=True)
        a = self.login(s, 'alice')
        r = self.assert_result(a.iq('get', "<query xmlns='%s'/>" % NS_VERSION, to=DOMAIN))
        qy = r.find(q(NS_VERSION, 'query'))
        self.assertEqual(qy.findtext(q(NS_VERSION, 'name')), 'Hearth')
        # XEP-0092 §2 requires <version/>: it is there, and says nothing.
        self.assertIn(qy.findtext(q(NS_VERSION, 'version')), ('', None))
        self.assertIsNone(qy.find(q(NS_VERSION, 'os')), to_str(r))


# --------------------------------------------------------------------------
# RFC 6120 §10.3.3: an IQ without 'to' is handled on behalf of the sender's account


class ToLessIqTest(ModulesBase):
    """Client libraries match a reply against the address of the request: to a request
    without 'to' the reply, result or error, carries no 'from' or the account's bare JID,
    never the domain (regression: errors came from the domain)."""

    CASES = [
        # (type, payload, expected type or error condition)
        ('get', "<query xmlns='jabber:iq:roster'/>", 'result'),
        ('set', "<query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/>"
                "</query>", 'bad-request'),
        ('get', "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>",
         'result'),
        ('get', "<query xmlns='jabber:iq:private'/>", 'not-acceptable'),
        ('get', "<query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query>",
         'not-acceptable'),
        ('get', "<vCard xmlns='vcard-temp'/>", 'result'),
        ('get', "<blocklist xmlns='urn:xmpp:blocking'/>", 'result'),
        ('set', "<block xmlns='urn:xmpp:blocking'/>", 'bad-request'),
        ('set', "<query xmlns='urn:xmpp:mam:2'/>", 'result'),
        ('set', "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
                "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
                "<field var='start'><value>not a date</value></field></x></query>", 'bad-request'),
        ('get', "<query xmlns='http://jabber.org/protocol/disco#info'/>", 'result'),
        ('get', "<query xmlns='http://jabber.org/protocol/disco#items'/>", 'result'),
        ('get', "<ping xmlns='urn:xmpp:ping'/>", 'result'),
        ('set', "<ping xmlns='urn:xmpp:ping'/>", 'bad-request'),
        ('get', "<query xmlns='jabber:iq:version'/>", 'service-unavailable'),
        ('get', "<query xmlns='jabber:iq:last'/>", None),
        ('get', "<unknown xmlns='urn:example:nothing'/>", 'service-unavailable'),
        ('get', "<a xmlns='urn:example:one'/><b xmlns='urn:example:two'/>", 'bad-request'),
        ('set', "<query xmlns='jabber:iq:register'><password/></query>", None),
        ('get', "<enable xmlns='urn:xmpp:carbons:2'/>", 'bad-request'),
    ]

    def test_replies_to_toless_iqs(self):
        s = self.start_server()
        a = self.login(s, 'alice')
        own = 'alice@' + DOMAIN
        for type_, payload, want in self.CASES:
            with self.subTest(payload=payload):
                r = a.iq(type_, payload)
                self.assertIn(r.get('from'), (None, own), to_str(r))
                if want == 'result':
                    self.assert_result(r)
                elif want is not None:
                    self.assert_error(r, want)
        # addressed to the bare JID, the reply comes from it
        for type_, payload, want in self.CASES:
            with self.subTest(payload=payload, to=own):
                r = a.iq(type_, payload, to=own)
                self.assertEqual(r.get('from'), own, to_str(r))


# --------------------------------------------------------------------------
# XEP-0054


class VcardTest(ModulesBase):
    def setUp(self):
        self.s = self.start_server(vcard__max_size=2048)
        self.a = self.login(self.s, 'alice')
        self.b = self.login(self.s, 'bob')

    def vcard_of(self, r):
        self.assert_result(r)
        v = r.find(q(NS_VCARD, 'vCard'))
        self.assertIsNotNone(v, to_str(r))
        return v

    def check_alice(self, v):
        self.assertEqual(v.findtext(q(NS_VCARD, 'FN')), 'Alice Liddell')
        self.assertEqual(v.findtext('%s/%s' % (q(NS_VCARD, 'N'), q(NS_VCARD, 'GIVEN'))), 'Alice')
        self.assertIsNotNone(v.find('%s/%s' % (q(NS_VCARD, 'N'), q(NS_VCARD, 'MIDDLE'))))
        self.assertEqual(v.findtext(q(NS_VCARD, 'NICKNAME')), 'alice & co')
        desc = v.find(q(NS_VCARD, 'DESC'))
        self.assertEqual(desc.get('{http://www.w3.org/XML/1998/namespace}lang'), 'en')
        x = v.find(q('urn:example:ext', 'X'))
        self.assertIsNotNone(x, to_str(v))
        self.assertEqual(x.get('a'), '1')

    def set_alice(self):
        r = self.a.iq('set', ALICE_VCARD)
        self.assert_result(r)
        self.assertEqual(len(r), 0, to_str(r))

    def test_own_empty_before_set(self):
        v = self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>"))
        self.assertEqual(len(v), 0, to_str(v))

    def test_set_then_get_own(self):
        self.set_alice()
        r = self.a.iq('get', "<vCard xmlns='vcard-temp'/>")
        self.assertIsNone(r.get('from'), to_str(r))
        self.check_alice(self.vcard_of(r))
        # the same, addressed to one's own bare JID
        r = self.a.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN)
        self.assertEqual(r.get('from'), 'alice@' + DOMAIN)
        self.check_alice(self.vcard_of(r))

    def test_set_replaces(self):
        self.set_alice()
        self.assert_result(self.a.iq('set', "<vCard xmlns='vcard-temp'><FN>A. L.</FN></vCard>"))
        v = self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>"))
        self.assertEqual(v.findtext(q(NS_VCARD, 'FN')), 'A. L.')
        self.assertIsNone(v.find(q(NS_VCARD, 'NICKNAME')))

    def test_get_by_another_user(self):
        self.set_alice()
        r = self.b.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN)
        self.assertEqual(r.get('from'), 'alice@' + DOMAIN)
        self.check_alice(self.vcard_of(r))

    def test_another_users_missing_vcard(self):
        # An existing account without a vCard has an empty one (XEP-0054 §3.3, as Prosody and
        # ejabberd answer: clients report an error as a failure); an account that does not
        # exist gets service-unavailable (RFC 6121 §8.5.1).
        r = self.b.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN)
        self.assertEqual(r.get('from'), 'alice@' + DOMAIN)
        self.assertEqual(len(self.vcard_of(r)), 0, to_str(r))
        r = self.b.iq('get', "<vCard xmlns='vcard-temp'/>", to='nobody@' + DOMAIN)
        self.assert_error(r, 'service-unavailable')

    def test_set_another_user_forbidden(self):
        r = self.b.iq('set', "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>",
                      to='alice@' + DOMAIN)
        self.assert_error(r, 'forbidden')
        r = self.b.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN)
        self.assertEqual(len(self.vcard_of(r)), 0, 'nothing was stored: %s' % to_str(r))

    def test_server_vcard(self):
        r = self.a.iq('set', "<vCard xmlns='vcard-temp'><FN>Srv</FN></vCard>", to=DOMAIN)
        self.assert_error(r, 'not-allowed')
        r = self.a.iq('get', "<vCard xmlns='vcard-temp'/>", to=DOMAIN)
        self.assert_error(r, 'item-not-found')

    def test_too_large(self):
        self.set_alice()
        big = "<vCard xmlns='vcard-temp'><FN>Big</FN><DESC>%s</DESC></vCard>" % ('x' * 3000)
        self.assert_error(self.a.iq('set', big), 'not-acceptable', 'vCard too large')
        # nothing stored: the old one is still there
        self.check_alice(self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>")))

    def test_just_under_the_limit(self):
        fill = 'y' * 1900
        v = "<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>" % fill
        self.assert_result(self.a.iq('set', v))
        got = self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>"))
        self.assertEqual(got.findtext(q(NS_VCARD, 'DESC')), fill)

    def test_empty_set_deletes(self):
        self.set_alice()
        self.assert_result(self.a.iq('set', "<vCard xmlns='vcard-temp'/>"))
        v = self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>"))
        self.assertEqual(len(v), 0, to_str(v))
        v = self.vcard_of(self.b.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN))
        self.assertEqual(len(v), 0, to_str(v))

    def test_persists_across_restart(self):
        self.set_alice()
        self.s.restart()
        b = self.login(self.s, 'bob', 'again')
        r = b.iq('get', "<vCard xmlns='vcard-temp'/>", to='alice@' + DOMAIN)
        self.check_alice(self.vcard_of(r))
        a = self.login(self.s, 'alice', 'again')
        self.check_alice(self.vcard_of(a.iq('get', "<vCard xmlns='vcard-temp'/>")))

    def test_pipelined_requests_answer_in_order(self):
        self.a.send("<iq type='set' id='p1'><vCard xmlns='vcard-temp'><FN>one</FN></vCard></iq>"
                    "<iq type='get' id='p2'><vCard xmlns='vcard-temp'/></iq>"
                    "<iq type='set' id='p3'><vCard xmlns='vcard-temp'><FN>two</FN></vCard></iq>"
                    "<iq type='get' id='p4'><vCard xmlns='vcard-temp'/></iq>")
        got = [self.a.recv_stanza() for _ in range(4)]
        self.assertEqual([g.get('id') for g in got], ['p1', 'p2', 'p3', 'p4'])
        self.assertEqual(got[1].findtext('%s/%s' % (q(NS_VCARD, 'vCard'), q(NS_VCARD, 'FN'))), 'one')
        self.assertEqual(got[3].findtext('%s/%s' % (q(NS_VCARD, 'vCard'), q(NS_VCARD, 'FN'))), 'two')

    def test_requester_gone_before_reply(self):
        # The deferred answers find their connection closed: nothing is sent, nothing leaks.
        c = self.login(self.s, 'alice', 'gone')
        c.send("<iq type='set' id='g1'><vCard xmlns='vcard-temp'><FN>gone</FN></vCard></iq>"
               "<iq type='get' id='g2'><vCard xmlns='vcard-temp'/></iq>"
               "<iq type='get' id='g3' to='bob@%s'><vCard xmlns='vcard-temp'/></iq>" % DOMAIN)
        c.close()
        # the other session's read may be served first: poll
        wait_for(lambda: self.vcard_of(self.a.iq('get', "<vCard xmlns='vcard-temp'/>"))
                 .findtext(q(NS_VCARD, 'FN')) == 'gone', 5, "the vCard set by the closed session")


# --------------------------------------------------------------------------
# XEP-0049


def private_iq(inner):
    return "<query xmlns='jabber:iq:private'>%s</query>" % inner


class PrivateTest(ModulesBase):
    def setUp(self):
        self.s = self.start_server(private__max_size=2048)
        self.a = self.login(self.s, 'alice')
        self.b = self.login(self.s, 'bob')

    def query_of(self, r):
        self.assert_result(r)
        qy = r.find(q(NS_PRIVATE, 'query'))
        self.assertIsNotNone(qy, to_str(r))
        return qy

    def set_prefs(self, c, nick):
        r = c.iq('set', private_iq("<exodus xmlns='exodus:prefs'><defaultnick>%s</defaultnick>"
                                   "</exodus>" % xml_escape(nick)))
        self.assert_result(r)
        self.assertEqual(len(r), 0, to_str(r))

    def get_prefs(self, c):
        qy = self.query_of(c.iq('get', private_iq("<exodus xmlns='exodus:prefs'/>")))
        els = list(qy)
        self.assertEqual(len(els), 1, to_str(qy))
        self.assertEqual(els[0].tag, q('exodus:prefs', 'exodus'))
        return els[0].findtext(q('exodus:prefs', 'defaultnick'))

    def test_get_none_echoes_empty_child(self):
        self.assertIsNone(self.get_prefs(self.a))
        qy = self.query_of(self.a.iq('get', private_iq("<exodus xmlns='exodus:prefs'/>")))
        self.assertEqual(len(qy[0]), 0, to_str(qy))

    def test_set_then_get(self):
        self.set_prefs(self.a, 'Hamlet')
        self.assertEqual(self.get_prefs(self.a), 'Hamlet')
        self.set_prefs(self.a, 'Ophelia & co')
        self.assertEqual(self.get_prefs(self.a), 'Ophelia & co')

    def test_to_own_bare_jid(self):
        self.set_prefs(self.a, 'Hamlet')
        r = self.a.iq('get', private_iq("<exodus xmlns='exodus:prefs'/>"), to='alice@' + DOMAIN)
        self.assertEqual(r.get('from'), 'alice@' + DOMAIN)
        qy = self.query_of(r)
        self.assertEqual(qy.findtext('%s/%s' % (q('exodus:prefs', 'exodus'),
                                                q('exodus:prefs', 'defaultnick'))), 'Hamlet')

    def test_namespaces_are_separate(self):
        self.set_prefs(self.a, 'Hamlet')
        self.assert_result(self.a.iq('set', private_iq(
            "<storage xmlns='storage:bookmarks'><conference jid='room@conf' name='R'/></storage>")))
        qy = self.query_of(self.a.iq('get', private_iq("<storage xmlns='storage:bookmarks'/>")))
        self.assertEqual(len(qy), 1, to_str(qy))
        conf = qy.find('%s/%s' % (q('storage:bookmarks', 'storage'), q('storage:bookmarks', 'conference')))
        self.assertIsNotNone(conf, to_str(qy))
        self.assertEqual(conf.get('jid'), 'room@conf')
        self.assertEqual(self.get_prefs(self.a), 'Hamlet')
        # an unset namespace is still empty
        qy = self.query_of(self.a.iq('get', private_iq("<other xmlns='urn:example:other'/>")))
        self.assertEqual([e.tag for e in qy], [q('urn:example:other', 'other')])
        self.assertEqual(len(qy[0]), 0)

    def test_users_are_separate(self):
        self.set_prefs(self.a, 'Hamlet')
        self.assertIsNone(self.get_prefs(self.b))
        self.set_prefs(self.b, 'Bottom')
        self.assertEqual(self.get_prefs(self.a), 'Hamlet')
        self.assertEqual(self.get_prefs(self.b), 'Bottom')

    def test_other_users_data_forbidden(self):
        self.set_prefs(self.a, 'Hamlet')
        r = self.b.iq('get', private_iq("<exodus xmlns='exodus:prefs'/>"), to='alice@' + DOMAIN)
        self.assert_error(r, 'forbidden')
        r = self.b.iq('set', private_iq("<exodus xmlns='exodus:prefs'><defaultnick>Macbeth"
                                        "</defaultnick></exodus>"), to='alice@' + DOMAIN)
        self.assert_error(r, 'forbidden')
        self.assertEqual(self.get_prefs(self.a), 'Hamlet')

    def test_to_server_forbidden(self):
        r = self.a.iq('get', private_iq("<exodus xmlns='exodus:prefs'/>"), to=DOMAIN)
        self.assert_error(r, 'forbidden')

    def test_reserved_namespaces(self):
        for inner in ("<exodus/>",  # inherits jabber:iq:private
                      "<x xmlns='jabber:iq:private'/>",
                      "<message xmlns='jabber:client'/>",
                      "<message xmlns='jabber:server'/>",
                      "<x xmlns=''/>"):
            for type_ in ('get', 'set'):
                r = self.a.iq(type_, private_iq(inner))
                self.assert_error(r, 'not-acceptable', 'reserved namespace')

    def test_no_child(self):
        self.assert_error(self.a.iq('get', private_iq('')), 'not-acceptable')
        self.assert_error(self.a.iq('set', private_iq('')), 'not-acceptable')

    def test_two_namespaces_bad_request(self):
        inner = "<a xmlns='urn:example:a'/><b xmlns='urn:example:b'/>"
        self.assert_error(self.a.iq('get', private_iq(inner)), 'bad-request')
        self.assert_error(self.a.iq('set', private_iq(inner)), 'bad-request')

    def test_several_elements_of_one_namespace(self):
        # XEP-0049 §2.3: a set or result MAY hold several elements of the same namespace.
        inner = "<a xmlns='urn:example:m'>1</a><b xmlns='urn:example:m'>2</b>"
        self.assert_result(self.a.iq('set', private_iq(inner)))
        qy = self.query_of(self.a.iq('get', private_iq("<a xmlns='urn:example:m'/>")))
        self.assertEqual([(e.tag, e.text) for e in qy],
                         [(q('urn:example:m', 'a'), '1'), (q('urn:example:m', 'b'), '2')])

    def test_too_large(self):
        self.set_prefs(self.a, 'Hamlet')
        r = self.a.iq('set', private_iq("<exodus xmlns='exodus:prefs'><defaultnick>%s"
                                        "</defaultnick></exodus>" % ('z' * 3000)))
        self.assert_error(r, 'not-acceptable', 'private XML too large')
        self.assertEqual(self.get_prefs(self.a), 'Hamlet')

    def test_total_per_account_bounded(self):
        # Regression: only each namespace was bounded, so one account could store any number
        # of fragments. Every namespace together now stays within private.max_total.
        s = self.start_server(private__max_size=2048, private__max_total=8192)
        a = self.login(s, 'alice', 'total')
        fill = 'z' * 1900
        stored = 0
        for i in range(10):
            r = a.iq('set', private_iq("<d xmlns='urn:example:n%d'>%s</d>" % (i, fill)))
            if r.get('type') == 'error':
                self.assert_error(r, 'not-acceptable', 'private XML storage of this account is full')
                break
            stored += 1
        self.assertEqual(stored, 4)  # 4 x about 1,950 bytes fit in 8 KiB, a fifth does not
        # replacing a stored namespace with something of the same size still fits
        self.assert_result(a.iq('set', private_iq("<d xmlns='urn:example:n0'>%s</d>" % fill)))
        # what was stored is intact, what was refused is absent
        r = self.query_of(a.iq('get', private_iq("<d xmlns='urn:example:n3'/>")))
        self.assertEqual(r.findtext(q('urn:example:n3', 'd')), fill)
        r = self.query_of(a.iq('get', private_iq("<d xmlns='urn:example:n4'/>")))
        self.assertEqual(r.findtext(q('urn:example:n4', 'd')) or '', '')
        # deleting frees room
        self.assert_result(a.iq('set', private_iq("<d xmlns='urn:example:n1'/>")))
        self.assert_result(a.iq('set', private_iq("<d xmlns='urn:example:n4'>%s</d>" % fill)))

    def test_requester_gone_before_reply(self):
        c = self.login(self.s, 'alice', 'gone')
        c.send("<iq type='set' id='g1'>%s</iq><iq type='get' id='g2'>%s</iq>"
               % (private_iq("<exodus xmlns='exodus:prefs'><defaultnick>gone</defaultnick>"
                             "</exodus>"), private_iq("<exodus xmlns='exodus:prefs'/>")))
        c.close()
        wait_for(lambda: self.get_prefs(self.a) == 'gone', 5, 'the data set by the closed session')

    def test_persists_across_restart(self):
        self.set_prefs(self.a, 'Hamlet')
        self.s.restart()
        a = self.login(self.s, 'alice', 'again')
        self.assertEqual(self.get_prefs(a), 'Hamlet')


if __name__ == '__main__':
    main()
