"""XEP-0077 In-Band Registration: the stream feature, the form, creating an
account before authentication (then logging in with it), the refusals
(closed, unencrypted, conflict, bad username or password, rate limit), and
after authentication password change and account removal."""

import base64
import unittest

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_SASL, NS_STANZAS, NS_STREAM,
                    NS_STREAMS_ERR, Client, SaslFailure, Server, main, q, stanza_error, to_str,
                    xml_escape)

NS_REGISTER = 'jabber:iq:register'
NS_FEATURE = 'http://jabber.org/features/iq-register'
USERS = {'alice': 'wonderland', 'bob': 'builder'}
OPEN = {'registration.open': 'true', 'registration.rate_limit': '0'}


def reg_query(username=None, password=None, extra=''):
    inner = ''
    if username is not None:
        inner += '<username>%s</username>' % xml_escape(username)
    if password is not None:
        inner += '<password>%s</password>' % xml_escape(password)
    return "<query xmlns='%s'>%s%s</query>" % (NS_REGISTER, inner, extra)


class RegisterBase(unittest.TestCase):
    settings = OPEN

    def start_server(self, settings=None, users=USERS):
        s = Server(dict(settings if settings is not None else self.settings), users=users)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()
        finally:
            s.close()

    def client(self, s):
        c = Client(s)
        self.addCleanup(c.close)
        return c

    def preauth(self, s, tls=True):
        """A connection ready for pre-auth IQs (after STARTTLS by default)."""
        c = self.client(s).connect()
        c.open_stream()
        if tls:
            c.starttls()
            c.open_stream()
        return c

    def login(self, s, user, pw, resource=None):
        c = self.client(s)
        c.login(user, pw, resource=resource)
        return c

    def register(self, c, user, pw):
        return c.iq('set', reg_query(user, pw))

    def assert_result(self, r):
        self.assertEqual(r.get('type'), 'result', to_str(r))

    def assert_error(self, r, cond, etype=None, text=None):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        got = stanza_error(r)
        self.assertIsNotNone(got, to_str(r))
        self.assertEqual(got[1], cond, to_str(r))
        if etype is not None:
            self.assertEqual(got[0], etype, to_str(r))
        if text is not None:
            t = r.find('%s/%s' % (q(NS_CLIENT, 'error'), q(NS_STANZAS, 'text')))
            self.assertIsNotNone(t, to_str(r))
            self.assertIn(text, t.text or '', to_str(r))

    def assert_preauth_reply(self, r):
        """Pre-auth replies carry no addresses: the client has none yet."""
        self.assertIsNone(r.get('from'), to_str(r))
        self.assertIsNone(r.get('to'), to_str(r))

    def can_login(self, s, user, pw, mech='SCRAM-SHA-256'):
        c = Client(s)
        try:
            c.connect()
            c.open_stream()
            c.starttls()
            c.open_stream()
            try:
                c.auth_scram(user, pw, mech)
            except SaslFailure as e:
                self.assertEqual(e.condition, 'not-authorized', to_str(e.element))
                return False
            return True
        finally:
            c.close()

    def account_rows(self, s, user):
        return s.db_rows('SELECT count(*) FROM accounts WHERE username = ?', (user,))[0][0]


class FeatureTest(RegisterBase):
    def test_not_advertised_when_closed(self):
        s = self.start_server({})
        c = self.client(s).connect()
        _, f = c.open_stream()
        self.assertIsNone(f.find(q(NS_FEATURE, 'register')), to_str(f))
        c.starttls()
        _, f = c.open_stream()
        self.assertIsNone(f.find(q(NS_FEATURE, 'register')), to_str(f))

    def test_advertised_only_after_tls_when_tls_required(self):
        s = self.start_server()
        c = self.client(s).connect()
        _, f = c.open_stream()
        self.assertIsNone(f.find(q(NS_FEATURE, 'register')), to_str(f))
        # Asking anyway over the plain stream: refused, the stream stays usable.
        r = c.iq('get', reg_query())
        self.assert_error(r, 'not-authorized', 'auth')
        self.assert_preauth_reply(r)
        r = c.iq('set', reg_query('eve', 'evepassword'))
        self.assert_error(r, 'not-authorized', 'auth')
        c.starttls()
        _, f = c.open_stream()
        self.assertIsNotNone(f.find(q(NS_FEATURE, 'register')), to_str(f))
        self.assertEqual(self.account_rows(s, 'eve'), 0)

    def test_advertised_before_tls_when_tls_optional(self):
        s = self.start_server(dict(OPEN, **{'c2s.tls': 'optional'}))
        c = self.client(s).connect()
        _, f = c.open_stream()
        self.assertIsNotNone(f.find(q(NS_FEATURE, 'register')), to_str(f))
        self.assert_result(self.register(c, 'plain', 'plainpassword'))
        self.assertTrue(self.can_login(s, 'plain', 'plainpassword'))

    def test_not_advertised_after_auth_but_in_disco(self):
        s = self.start_server()
        c = self.login(s, 'alice', USERS['alice'])
        r = c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
        self.assert_result(r)
        feats = [f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_REGISTER, feats, to_str(r))


class PreauthTest(RegisterBase):
    def test_get_form(self):
        s = self.start_server()
        c = self.preauth(s)
        r = c.iq('get', reg_query(), id_='form1')
        self.assert_result(r)
        self.assert_preauth_reply(r)
        self.assertEqual(r.get('id'), 'form1')
        query = r.find(q(NS_REGISTER, 'query'))
        self.assertIsNotNone(query, to_str(r))
        self.assertEqual([e.tag for e in query],
                         [q(NS_REGISTER, 'instructions'), q(NS_REGISTER, 'username'),
                          q(NS_REGISTER, 'password')], to_str(r))
        self.assertTrue((query.findtext(q(NS_REGISTER, 'instructions')) or '').strip())
        self.assertIsNone(query.find(q(NS_REGISTER, 'registered')))

    def test_get_form_addressed_to_server(self):
        s = self.start_server()
        c = self.preauth(s)
        r = c.iq('get', reg_query(), to=DOMAIN)
        self.assert_result(r)
        self.assert_preauth_reply(r)

    def test_register_then_login(self):
        s = self.start_server()
        c = self.preauth(s)
        r = self.register(c, 'dave', 'davepassword')
        self.assert_result(r)
        self.assert_preauth_reply(r)
        self.assertEqual(len(r), 0, to_str(r))
        s.wait_log(r'registered dave@%s from 127\.0\.0\.1' % DOMAIN)
        self.assertNotIn('davepassword', s.current_log())
        # The same stream goes on to authenticate with the new account.
        c.auth_scram('dave', 'davepassword')
        c._new_parser()
        c.open_stream()
        self.assertEqual(c.bind('home'), 'dave@%s/home' % DOMAIN)
        # Both SCRAM secrets were stored.
        self.assertTrue(self.can_login(s, 'dave', 'davepassword', 'SCRAM-SHA-1'))
        self.assertTrue(self.can_login(s, 'dave', 'davepassword', 'SCRAM-SHA-256'))
        self.assertFalse(self.can_login(s, 'dave', 'wrongpassword'))
        self.assertEqual(self.account_rows(s, 'dave'), 1)

    def test_username_is_prepared(self):
        s = self.start_server()
        c = self.preauth(s)
        self.assert_result(self.register(c, 'Émile', 'emilepassword'))
        self.assertTrue(self.can_login(s, 'émile', 'emilepassword'))
        self.assertEqual(self.account_rows(s, 'émile'), 1)

    def test_duplicate_is_conflict(self):
        s = self.start_server()
        c = self.preauth(s)
        self.assert_result(self.register(c, 'erin', 'erinpassword'))
        r = self.register(c, 'erin', 'otherpassword')
        self.assert_error(r, 'conflict', 'cancel')
        self.assert_preauth_reply(r)
        self.assertNotIn(b'otherpassword', bytes(c.raw), 'password echoed in the error')
        # An account made by hearthctl, and another spelling of the same name.
        self.assert_error(self.register(c, 'alice', 'alicepassword'), 'conflict', 'cancel')
        self.assert_error(self.register(c, 'ERIN', 'erinpassword2'), 'conflict', 'cancel')
        self.assertTrue(self.can_login(s, 'erin', 'erinpassword'))
        self.assertTrue(self.can_login(s, 'alice', USERS['alice']))

    def test_short_or_empty_password(self):
        s = self.start_server(dict(OPEN, **{'registration.min_password': '6'}))
        c = self.preauth(s)
        for pw in ('', 'abcde', 'ééééé'):
            r = self.register(c, 'frank', pw)
            self.assert_error(r, 'not-acceptable', 'modify', 'password too short')
        r = c.iq('set', "<query xmlns='%s'><username>frank</username><password/></query>"
                 % NS_REGISTER)
        self.assert_error(r, 'not-acceptable', 'modify', 'password too short')
        # Six characters are enough, though twelve bytes in UTF-8 count as six.
        self.assert_result(self.register(c, 'frank', 'éééééé'))
        self.assertTrue(self.can_login(s, 'frank', 'éééééé'))

    def test_missing_fields(self):
        s = self.start_server()
        c = self.preauth(s)
        self.assert_error(c.iq('set', reg_query('gina')), 'not-acceptable', 'modify')
        self.assert_error(c.iq('set', reg_query(password='ginapassword')), 'not-acceptable',
                          'modify')
        self.assert_error(c.iq('set', reg_query()), 'not-acceptable', 'modify')
        self.assertEqual(self.account_rows(s, 'gina'), 0)

    def test_invalid_username(self):
        s = self.start_server()
        c = self.preauth(s)
        for user in ('a b', 'x@y', 'a/b', "a'b", 'x' * 1024):
            r = self.register(c, user, 'goodpassword')
            self.assert_error(r, 'not-acceptable', 'modify')
            self.assert_preauth_reply(r)
        self.assertTrue(c.is_open())

    def test_remove_before_auth(self):
        s = self.start_server()
        c = self.preauth(s)
        r = c.iq('set', "<query xmlns='%s'><remove/></query>" % NS_REGISTER)
        self.assert_error(r, 'unexpected-request')
        self.assertTrue(self.can_login(s, 'alice', USERS['alice']))

    def test_closed_is_service_unavailable(self):
        s = self.start_server({'registration.open': 'false'})
        c = self.preauth(s)
        r = c.iq('get', reg_query())
        self.assert_error(r, 'service-unavailable', 'cancel')
        self.assert_preauth_reply(r)
        r = self.register(c, 'henry', 'henrypassword')
        self.assert_error(r, 'service-unavailable', 'cancel')
        self.assertEqual(self.account_rows(s, 'henry'), 0)
        # The stream is still good for authentication.
        c.auth_scram('alice', USERS['alice'])

    def test_other_preauth_iq_still_closes_the_stream(self):
        s = self.start_server()
        c = self.preauth(s)
        c.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        c.assert_stream_error('not-authorized')

    def test_rate_limit(self):
        s = self.start_server(dict(OPEN, **{'registration.rate_limit': '2'}))
        c = self.preauth(s)
        self.assert_result(self.register(c, 'ivan', 'ivanpassword'))
        # A failed attempt counts too.
        self.assert_error(self.register(c, 'ivan', 'ivanpassword'), 'conflict')
        r = self.register(c, 'judy', 'judypassword')
        self.assert_error(r, 'resource-constraint', 'wait')
        self.assert_preauth_reply(r)
        # Another connection from the same address is counted with it.
        d = self.preauth(s)
        self.assert_error(self.register(d, 'kate', 'katepassword'), 'resource-constraint', 'wait')
        # Invalid forms are refused before counting, and the form is still given.
        self.assert_error(self.register(d, 'a b', 'katepassword'), 'not-acceptable')
        self.assert_result(d.iq('get', reg_query()))
        self.assertEqual(self.account_rows(s, 'judy'), 0)
        self.assertEqual(self.account_rows(s, 'kate'), 0)
        self.assertTrue(self.can_login(s, 'ivan', 'ivanpassword'))

    def test_pipelined_registrations(self):
        s = self.start_server()
        c = self.preauth(s)
        users = ['p%d' % i for i in range(8)]
        c.send(''.join("<iq type='set' id='r-%s'>%s</iq>" % (u, reg_query(u, u + 'password'))
                       for u in users))
        got = {}
        while len(got) < len(users):
            r = c.recv_stanza()
            got[r.get('id')] = r.get('type')
        self.assertEqual(got, {'r-' + u: 'result' for u in users})
        for u in users:
            self.assertEqual(self.account_rows(s, u), 1)

    def test_close_while_registering(self):
        s = self.start_server()
        c = self.preauth(s)
        c.send("<iq type='set' id='gone'>%s</iq>" % reg_query('lena', 'lenapassword'))
        c.reset()
        # The account is made all the same; the reply has nowhere to go.
        s.wait_log(r'registered lena@%s' % DOMAIN)
        self.assertTrue(self.can_login(s, 'lena', 'lenapassword'))

    def test_authenticate_while_registering(self):
        # SASL success moves the stream to its home worker while the registration is still in
        # flight on this one: its late reply must be dropped, not written to a moved stream.
        s = self.start_server(dict(OPEN, **{'server.workers': '4'}))
        for i in range(6):
            c = self.preauth(s)
            plain = base64.b64encode(b'\0alice\0' + USERS['alice'].encode()).decode()
            c.send("<iq type='set' id='late'>%s</iq><auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                   % (reg_query('mike%d' % i, 'mikepassword'), NS_SASL, plain))
            while True:
                st = c.recv_stanza()
                if st.tag == q(NS_SASL, 'success'):
                    break
                self.assertEqual(st.tag, q(NS_CLIENT, 'iq'), to_str(st))
            c._new_parser()
            c.open_stream()
            c.bind('r%d' % i)
            self.assert_result(c.ping())
            s.wait_log(r'registered mike%d@%s' % (i, DOMAIN))
            raw = bytes(c.raw)
            late = raw.find(b"id='late'")
            self.assertTrue(late < raw.find(b'<success'), 'reply on the new stream: %r' % raw)
            self.assertTrue(self.can_login(s, 'mike%d' % i, 'mikepassword'))
            c.close()


class AuthedTest(RegisterBase):
    def test_get_when_registered(self):
        s = self.start_server()
        c = self.login(s, 'alice', USERS['alice'])
        r = c.iq('get', reg_query())
        self.assert_result(r)
        query = r.find(q(NS_REGISTER, 'query'))
        self.assertIsNotNone(query, to_str(r))
        self.assertIsNotNone(query.find(q(NS_REGISTER, 'registered')), to_str(r))
        self.assertEqual(query.findtext(q(NS_REGISTER, 'username')), 'alice', to_str(r))
        self.assertIsNone(query.find(q(NS_REGISTER, 'password')), to_str(r))

    def test_change_password(self):
        s = self.start_server()
        c = self.login(s, 'alice', USERS['alice'])
        r = c.iq('set', reg_query('alice', 'looking-glass'), to=DOMAIN)
        self.assert_result(r)
        self.assertTrue(self.can_login(s, 'alice', 'looking-glass'))
        self.assertTrue(self.can_login(s, 'alice', 'looking-glass', 'SCRAM-SHA-1'))
        self.assertFalse(self.can_login(s, 'alice', USERS['alice']))
        self.assertFalse(self.can_login(s, 'alice', USERS['alice'], 'SCRAM-SHA-1'))
        # Without 'to' (addressed to the account itself) works as well.
        self.assert_result(c.iq('set', reg_query('alice', 'rabbit-hole')))
        self.assertTrue(self.can_login(s, 'alice', 'rabbit-hole'))
        self.assertFalse(self.can_login(s, 'alice', 'looking-glass'))
        s.wait_log('password changed for alice@%s' % DOMAIN)
        self.assertNotIn('rabbit-hole', s.current_log())
        # bob is untouched
        self.assertTrue(self.can_login(s, 'bob', USERS['bob']))

    def test_change_password_refusals(self):
        s = self.start_server(dict(OPEN, **{'registration.min_password': '8'}))
        c = self.login(s, 'alice', USERS['alice'])
        r = c.iq('set', reg_query('bob', 'new-password-1'))
        self.assert_error(r, 'bad-request', 'modify')
        self.assertNotIn(b'new-password-1', bytes(c.raw), 'password echoed in the error')
        # Registering another account from a session is not a password change.
        self.assert_error(c.iq('set', reg_query('zoe', 'zoe-password')), 'bad-request')
        self.assert_error(c.iq('set', reg_query(password='new-password-2')), 'bad-request')
        self.assert_error(c.iq('set', reg_query('alice')), 'bad-request')
        self.assert_error(c.iq('set', reg_query()), 'bad-request')
        for pw in ('', 'short', 'sevenCh'):
            self.assert_error(c.iq('set', reg_query('alice', pw)), 'not-acceptable', 'modify',
                              'password too short')
        self.assert_error(c.iq('set', "<query xmlns='%s'><remove/><username>alice</username>"
                                      "</query>" % NS_REGISTER), 'bad-request')
        self.assertTrue(self.can_login(s, 'alice', USERS['alice']))
        self.assertEqual(self.account_rows(s, 'zoe'), 0)
        # Addressed to another account: not this server's to answer for it.
        r = c.iq('set', reg_query('bob', 'new-password-3'), to='bob@%s' % DOMAIN)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertTrue(self.can_login(s, 'bob', USERS['bob']))

    def test_change_password_works_when_registration_closed(self):
        s = self.start_server({})
        c = self.login(s, 'alice', USERS['alice'])
        self.assert_result(c.iq('set', reg_query('alice', 'through-the-door')))
        self.assertTrue(self.can_login(s, 'alice', 'through-the-door'))

    def test_remove(self):
        s = self.start_server()
        a1 = self.login(s, 'alice', USERS['alice'], 'one')
        a2 = self.login(s, 'alice', USERS['alice'], 'two')
        b = self.login(s, 'bob', USERS['bob'], 'b')
        self.assertEqual(self.account_rows(s, 'alice'), 1)
        r = a1.iq('set', "<query xmlns='%s'><remove/></query>" % NS_REGISTER, id_='unreg1')
        self.assert_result(r)
        self.assertEqual(len(r), 0, to_str(r))
        s.wait_log('account alice@%s removed' % DOMAIN)
        self.assertEqual(self.account_rows(s, 'alice'), 0)
        self.assertFalse(self.can_login(s, 'alice', USERS['alice']))
        # The account's other session ends (XEP-0077 3.2: a stream error, then the close).
        seen = a2.expect_closed(timeout=5)
        errors = [e for k, e in seen if k == 'stanza' and e.tag == q(NS_STREAM, 'error')]
        for e in errors:
            self.assertIsNotNone(e.find(q(NS_STREAMS_ERR, 'not-authorized')), to_str(e))
        # Others are not affected.
        self.assert_result(b.ping())
        self.assertTrue(self.can_login(s, 'bob', USERS['bob']))
        # The name is free again.
        c = self.preauth(s)
        self.assert_result(self.register(c, 'alice', 'new-alice-password'))
        self.assertTrue(self.can_login(s, 'alice', 'new-alice-password'))


if __name__ == '__main__':
    main()
