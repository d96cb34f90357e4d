"""Hostile and broken input: every case gets the right stream error or SASL
failure and the connection closes (or stays open where RFC 6120 says so);
the server is still alive at the end of every test."""

import base64
import ssl
import time
import unittest

from hearth import (DOMAIN, NS_CLIENT, NS_PING, NS_SASL, NS_STREAM, NS_TLS, Client, SaslFailure,
                    Server, main, q, stream_error_condition, to_str, wait_for)

USERS = {'alice': 'wonderland', 'bob': 'builder'}
LIMIT_AFTER_AUTH = 262144
LIMIT_BEFORE_AUTH = 16384


class Base(unittest.TestCase):
    def setUp(self):
        self.s = self.start_server()

    def start_server(self, **settings):
        s = Server(users=USERS, **settings)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()  # the server never crashes
        finally:
            s.close()

    def client(self, server=None):
        c = Client(server or self.s)
        self.addCleanup(c.close)
        return c

    def opened(self, tls=False):
        """A client with an open stream (optionally after STARTTLS), not authenticated."""
        c = self.client().connect()
        c.open_stream()
        if tls:
            c.starttls()
            c.open_stream()
        return c

    def logged_in(self, user='alice', resource=None):
        c = self.client()
        c.login(user, USERS[user], resource=resource)
        return c

    def send_tolerant(self, c, data):
        """Send; the server may cut us off half way (that is the point)."""
        try:
            c.send(data)
        except OSError:
            pass

    def assert_login_works(self):
        c = self.client()
        self.assertEqual(c.login('bob', USERS['bob'], resource='check'), 'bob@localhost/check')
        self.assertEqual(c.ping().get('type'), 'result')
        c.close()


class XmlTest(Base):
    def test_malformed_xml(self):
        c = self.opened()
        c.send('<message><body>x</message>')
        c.assert_stream_error('not-well-formed')

    def test_malformed_xml_after_auth(self):
        c = self.logged_in()
        c.send("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'></iq>")
        c.assert_stream_error('not-well-formed')

    def test_bad_utf8(self):
        c = self.opened()
        c.send(b"<message><body>\xff\xfe</body></message>")
        c.assert_stream_error(('not-well-formed', 'bad-format'))

    def test_oversize_stanza_after_auth(self):
        c = self.logged_in(resource='big')
        body = 'x' * 300000
        self.send_tolerant(c, "<message to='%s' type='chat'><body>%s</body></message>" % (c.jid, body))
        c.assert_stream_error('policy-violation', timeout=10)

    def test_200k_stanza_passes(self):
        c = self.logged_in(resource='big')
        body = 'y' * 200000
        c.send("<message to='%s' type='chat' id='big1'><body>%s</body></message>" % (c.jid, body))
        m = c.recv_until(lambda s: s.tag == q(NS_CLIENT, 'message'), timeout=10)
        self.assertEqual(m.get('id'), 'big1')
        self.assertEqual(m.findtext(q(NS_CLIENT, 'body')), body)
        self.assertEqual(c.ping().get('type'), 'result')

    def test_oversize_before_auth(self):
        c = self.opened()
        junk = 'a' * (LIMIT_BEFORE_AUTH + 4096)
        self.send_tolerant(c, "<iq type='get' id='x'><query xmlns='jabber:iq:version'>%s</query></iq>" % junk)
        c.assert_stream_error('policy-violation')

    def test_oversize_before_auth_after_tls(self):
        c = self.opened(tls=True)
        junk = 'a' * (LIMIT_BEFORE_AUTH + 4096)
        self.send_tolerant(c, "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, junk))
        c.assert_stream_error('policy-violation')

    def test_doctype(self):
        c = self.client().connect()
        c.send("<?xml version='1.0'?><!DOCTYPE stream:stream>" + Client.stream_header(decl=None))
        c.assert_stream_error('restricted-xml')

    def test_entity_in_doctype(self):
        c = self.client().connect()
        c.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'yyyyyyyy'>]>"
               + Client.stream_header(decl=None) + '<message><body>&x;</body></message>')
        c.assert_stream_error('restricted-xml')

    def test_comment_after_header(self):
        c = self.opened()
        c.send('<!-- x -->')
        c.assert_stream_error('restricted-xml')

    def test_comment_inside_stanza(self):
        c = self.logged_in()
        c.send("<message to='bob@localhost'><!-- x --><body>hi</body></message>")
        c.assert_stream_error('restricted-xml')

    def test_processing_instruction_after_header(self):
        c = self.opened()
        c.send('<?foo bar?>')
        c.assert_stream_error('restricted-xml')

    def test_unsupported_encoding(self):
        c = self.client().connect()
        c.send(Client.stream_header(decl="<?xml version='1.0' encoding='ISO-8859-1'?>"))
        c.assert_stream_error('unsupported-encoding')

    def test_utf8_declaration_accepted(self):
        c = self.client().connect()
        header, features = c.open_stream(decl="<?xml version='1.0' encoding='UTF-8'?>")
        self.assertEqual(header.get('from'), DOMAIN)

    def test_bytewise_ping(self):
        c = self.logged_in(resource='slow')
        c.send_bytewise("<iq type='get' id='bw1' to='localhost'><ping xmlns='%s'/></iq>" % NS_PING)
        r = c.recv_stanza()
        self.assertEqual((r.tag, r.get('id'), r.get('type')), (q(NS_CLIENT, 'iq'), 'bw1', 'result'))

    def test_bytewise_header(self):
        c = self.client().connect()
        c.send_bytewise(Client.stream_header())
        header = c.recv_header()
        self.assertEqual(header.get('from'), DOMAIN)
        self.assertEqual(c.recv_stanza().tag, q(NS_STREAM, 'features'))

    def test_undeclared_prefix(self):
        c = self.opened()
        c.send('<foo:bar/>')
        c.assert_stream_error(('bad-namespace-prefix', 'not-well-formed'))  # RFC 6120 4.9.3.2

    def test_nul_character_reference(self):
        c = self.logged_in()
        c.send("<message to='bob@localhost'><body>&#0;</body></message>")
        c.assert_stream_error('not-well-formed')

    def test_surrogate_character_reference(self):
        c = self.logged_in()
        c.send("<message to='bob@localhost'><body>&#xD800;</body></message>")
        c.assert_stream_error('not-well-formed')

    def test_undefined_entity(self):
        c = self.logged_in()
        c.send("<message to='bob@localhost'><body>&nbsp;</body></message>")
        c.assert_stream_error(('not-well-formed', 'restricted-xml'))

    def test_second_xml_declaration(self):
        c = self.opened()
        c.send("<?xml version='1.0'?>")
        c.assert_stream_error(('restricted-xml', 'not-well-formed'))

    def test_duplicate_attribute(self):
        c = self.logged_in()
        c.send("<message to='bob@localhost' to='alice@localhost'><body>x</body></message>")
        c.assert_stream_error('not-well-formed')

    def test_cdata_is_plain_text(self):
        # CDATA sections are well-formed XML, not restricted by RFC 6120 11.1;
        # whatever the server does, it must not crash and must stay coherent.
        c = self.logged_in(resource='cd')
        c.send("<message to='%s' type='chat' id='cd1'><body><![CDATA[<b>&x]]></body></message>" % c.jid)
        kind, e = c.next_event()
        self.assertEqual(kind, 'stanza')
        if e.tag == q(NS_CLIENT, 'message'):
            self.assertEqual(e.findtext(q(NS_CLIENT, 'body')), '<b>&x')

    def test_deep_nesting(self):
        c = self.logged_in()
        self.send_tolerant(c, "<message to='bob@localhost'>" + '<a>' * 5000 + '</a>' * 5000 + '</message>')
        c.assert_stream_error('policy-violation')


class HeaderTest(Base):
    def test_wrong_stream_namespace(self):
        c = self.client().connect()
        c.send(Client.stream_header(stream_ns='http://wrong'))
        c.assert_stream_error('invalid-namespace')

    def test_wrong_content_namespace(self):
        c = self.client().connect()
        c.send(Client.stream_header(xmlns='jabber:server'))
        c.assert_stream_error('invalid-namespace')

    def test_host_unknown(self):
        c = self.client().connect()
        c.send(Client.stream_header(to='example.org'))
        c.assert_stream_error('host-unknown')

    def test_unsupported_version(self):
        c = self.client().connect()
        c.send(Client.stream_header(version='2.0'))
        c.assert_stream_error('unsupported-version')

    def test_oversize_header(self):
        c = self.client().connect()
        self.send_tolerant(c, Client.stream_header(extra="foo='%s'" % ('h' * 20000)))
        c.assert_stream_error('policy-violation')

    def test_header_without_to(self):
        # RFC 6120 4.7.2: a client SHOULD include 'to'; a server may serve its
        # default domain or answer host-unknown.
        c = self.client().connect()
        c.send(Client.stream_header(to=None))
        kind, e = c.next_event()
        self.assertEqual(kind, 'header')
        self.assertEqual(e.get('from'), DOMAIN)

    def test_wrong_root_element(self):
        c = self.client().connect()
        c.send("<?xml version='1.0'?><stream:foo xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        c.assert_stream_error(('invalid-namespace', 'bad-format', 'invalid-xml'))

    def test_header_answers_from(self):
        c = self.client().connect()
        header, _ = c.open_stream()
        self.assertEqual(header.get('from'), DOMAIN)
        self.assertEqual(header.get('version'), '1.0')

    def test_message_before_auth(self):
        # Before TLS on a TLS-required listener either condition fits RFC 6120
        # (not-authorized 4.9.3.12; policy-violation 4.9.3.18 for "TLS first").
        c = self.opened()
        c.send("<message to='bob@localhost'><body>x</body></message>")
        c.assert_stream_error(('not-authorized', 'policy-violation'))

    def test_message_before_auth_optional_tls(self):
        s = self.start_server(c2s__tls='optional')
        c = self.client(s).connect()
        c.open_stream()
        c.send("<message to='bob@localhost'><body>x</body></message>")
        c.assert_stream_error('not-authorized')

    def test_message_before_auth_after_tls(self):
        c = self.opened(tls=True)
        c.send("<iq type='get' id='p' to='localhost'><ping xmlns='%s'/></iq>" % NS_PING)
        c.assert_stream_error('not-authorized')


class SaslTest(Base):
    def test_wrong_password_then_retry(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure) as cm:
            c.auth_scram('alice', 'not-the-password')
        self.assertEqual(cm.exception.condition, 'not-authorized', to_str(cm.exception.element))
        self.assertTrue(c.is_open(0.2), 'stream closed after one failure')
        c.auth_scram('alice', USERS['alice'])
        c._new_parser()
        c.open_stream()
        self.assertEqual(c.bind('r'), 'alice@localhost/r')

    def test_wrong_password_plain(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure) as cm:
            c.auth_plain('alice', 'nope')
        self.assertEqual(cm.exception.condition, 'not-authorized')
        c.auth_plain('alice', USERS['alice'])

    def test_unknown_user_same_failure(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure) as cm:
            c.auth_scram('nobody', 'whatever')
        self.assertEqual(cm.exception.condition, 'not-authorized')
        with self.assertRaises(SaslFailure) as cm:
            c.auth_plain('nobody2', 'whatever')
        self.assertEqual(cm.exception.condition, 'not-authorized')

    def _first_challenge(self, user, mech='SCRAM-SHA-256'):
        c = self.opened(tls=True)
        bare, server_first, f = c.scram_first(user, mech)
        c.close()
        return f

    def test_unknown_user_challenge_shape(self):
        f1 = self._first_challenge('nobody')
        self.assertEqual(sorted(f1), ['i', 'r', 's'], f1)
        self.assertEqual(len(base64.b64decode(f1['s'])), 16, f1)
        self.assertEqual(f1['i'], '4096')
        f2 = self._first_challenge('nobody')
        self.assertEqual(f1['s'], f2['s'], 'fake salt not deterministic')
        self.assertNotEqual(f1['r'], f2['r'])
        f3 = self._first_challenge('somebody-else')
        self.assertNotEqual(f1['s'], f3['s'], 'the same fake salt for every unknown user')

    def test_unknown_user_indistinguishable_from_real(self):
        real = self._first_challenge('alice')
        fake = self._first_challenge('nobody')
        self.assertEqual(sorted(real), sorted(fake))
        self.assertEqual(real['i'], fake['i'])
        self.assertEqual(len(base64.b64decode(real['s'])), len(base64.b64decode(fake['s'])))
        real1 = self._first_challenge('alice', 'SCRAM-SHA-1')
        fake1 = self._first_challenge('nobody', 'SCRAM-SHA-1')
        self.assertEqual(real1['i'], fake1['i'])
        self.assertEqual(len(base64.b64decode(real1['s'])), len(base64.b64decode(fake1['s'])))

    def test_auth_attempts_limit(self):
        c = self.opened(tls=True)
        for attempt in range(2):
            with self.assertRaises(SaslFailure):
                c.auth_scram('alice', 'wrong%d' % attempt)
            self.assertTrue(c.is_open(0.1), 'closed after %d failures' % (attempt + 1))
        c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
               % (NS_SASL, base64.b64encode(b'\0alice\0wrong-again').decode()))
        seen = c.expect_closed(5)
        errors = [e for k, e in seen if k == 'stanza' and e.tag == q(NS_STREAM, 'error')]
        self.assertEqual(len(errors), 1, 'expected one stream error, saw %s'
                         % [(k, to_str(e) if k == 'stanza' else e) for k, e in seen])
        self.assertIn(stream_error_condition(errors[0]), ('not-authorized', 'policy-violation'))
        others = [e for k, e in seen if k == 'stanza' and e.tag != q(NS_STREAM, 'error')]
        for e in others:
            self.assertEqual(e.tag, q(NS_SASL, 'failure'), to_str(e))

    def test_unknown_mechanism(self):
        c = self.opened(tls=True)
        r = c.sasl_auth('X-NOT-A-MECH', b'abc')
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        self.assertIsNotNone(r.find(q(NS_SASL, 'invalid-mechanism')), to_str(r))
        c.auth_scram('alice', USERS['alice'])

    def test_cram_md5_not_accepted(self):
        c = self.opened(tls=True)
        r = c.sasl_auth('DIGEST-MD5')
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        self.assertIsNotNone(r.find(q(NS_SASL, 'invalid-mechanism')), to_str(r))

    def test_bad_base64(self):
        c = self.opened(tls=True)
        c.send("<auth xmlns='%s' mechanism='PLAIN'>!!!not*base64!!!</auth>" % NS_SASL)
        r = c.recv_stanza()
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        self.assertIsNotNone(r.find(q(NS_SASL, 'incorrect-encoding')), to_str(r))

    def test_bad_base64_in_response(self):
        c = self.opened(tls=True)
        c.scram_first('alice')
        c.send("<response xmlns='%s'>@@@@</response>" % NS_SASL)
        r = c.recv_stanza()
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        self.assertIsNotNone(r.find(q(NS_SASL, 'incorrect-encoding')), to_str(r))

    def test_abort(self):
        c = self.opened(tls=True)
        c.scram_first('alice')
        c.send("<abort xmlns='%s'/>" % NS_SASL)
        r = c.recv_stanza()
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        self.assertIsNotNone(r.find(q(NS_SASL, 'aborted')), to_str(r))
        self.assertTrue(c.is_open(0.1))

    def test_response_without_auth(self):
        c = self.opened(tls=True)
        c.send("<response xmlns='%s'>biws</response>" % NS_SASL)
        kind, e = c.next_event()
        self.assertEqual(kind, 'stanza')
        self.assertIn(e.tag, (q(NS_SASL, 'failure'), q(NS_STREAM, 'error')), to_str(e))

    def test_gs2_y_refused_when_plus_offered(self):
        # RFC 5802 6: 'y' means "I support channel binding but think you do
        # not"; a server that advertised -PLUS must fail it (downgrade attack).
        c = self.opened(tls=True)
        self.assertIn('SCRAM-SHA-256-PLUS', c.mechanisms(c.features))
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], gs2='y,,')

    def test_gs2_y_accepted_without_plus(self):
        c = self.client().connect()
        c.open_stream()
        c.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.assertEqual(c.recv_stanza().tag, q(NS_TLS, 'proceed'))
        ctx = c.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c.sock = ctx.wrap_socket(c.sock, server_hostname=DOMAIN)
        c.tls = True
        c._new_parser()
        _, features = c.open_stream()
        if any(m.endswith('-PLUS') for m in c.mechanisms(features)):
            self.skipTest('server offers -PLUS over TLS 1.2')
        c.auth_scram('alice', USERS['alice'], gs2='y,,')

    def test_plus_with_tls_unique_refused(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], mech='SCRAM-SHA-256-PLUS', gs2='p=tls-unique,,',
                         cb_data=c.sock.get_channel_binding('tls-unique') or b'x' * 12)
        self.assertTrue(c.is_open(0.1))

    def test_cb_type_mismatch_uncounted_then_y_accepted(self):
        # A -PLUS attempt with a binding type we do not offer fails without
        # counting towards c2s.auth_attempts; afterwards 'y' is no downgrade
        # sign on this stream (no type is shared) and is accepted.
        c = self.opened(tls=True)
        for _ in range(4):
            with self.assertRaises(SaslFailure):
                c.auth_scram('alice', USERS['alice'], mech='SCRAM-SHA-256-PLUS', gs2='p=tls-unique,,',
                             cb_data=b'x' * 12)
            self.assertTrue(c.is_open(0.05))
        c.auth_scram('alice', USERS['alice'], gs2='y,,')

    def test_y_still_refused_after_wrong_password(self):
        # only a binding-type mismatch unlocks 'y'; a plain failure does not
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', 'wrong')
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], gs2='y,,')

    def test_plus_with_wrong_exporter_data_refused(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], mech='SCRAM-SHA-256-PLUS', gs2='p=tls-exporter,,',
                         cb_data=b'\0' * 32)

    def test_plus_mechanism_with_n_flag_refused(self):
        # a -PLUS mechanism requires the 'p' flag
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], mech='SCRAM-SHA-256-PLUS', gs2='n,,')

    def test_scram_tampered_nonce(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], nonce_suffix='tampered')

    def test_scram_foreign_authzid(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure) as cm:
            c.auth_scram('alice', USERS['alice'], gs2='n,a=bob@localhost,')
        self.assertIn(cm.exception.condition, ('invalid-authzid', 'not-authorized'),
                      to_str(cm.exception.element))

    def test_foreign_authzid(self):
        c = self.opened(tls=True)
        with self.assertRaises(SaslFailure) as cm:
            c.auth_plain('alice', USERS['alice'], authzid='bob@localhost')
        self.assertEqual(cm.exception.condition, 'invalid-authzid', to_str(cm.exception.element))

    def test_own_authzid_accepted(self):
        c = self.opened(tls=True)
        c.auth_plain('alice', USERS['alice'], authzid='alice@localhost')

    def test_plain_before_tls(self):
        c = self.opened()
        r = c.sasl_auth('PLAIN', b'\0alice\0' + USERS['alice'].encode())
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        conds = [child.tag for child in r]
        self.assertTrue(q(NS_SASL, 'encryption-required') in conds or q(NS_SASL, 'invalid-mechanism') in conds,
                        to_str(r))
        self.assertNotIn('authenticated alice', self.s.current_log())

    def test_scram_before_tls(self):
        c = self.opened()
        r = c.sasl_auth('SCRAM-SHA-256', b'n,,n=alice,r=abcdefghijklmnop')
        self.assertEqual(r.tag, q(NS_SASL, 'failure'), to_str(r))
        conds = [child.tag for child in r]
        self.assertTrue(q(NS_SASL, 'encryption-required') in conds or q(NS_SASL, 'invalid-mechanism') in conds,
                        to_str(r))


class LimitsTest(Base):
    def setUp(self):
        pass  # each test starts its own server

    def test_preauth_per_ip(self):
        s = self.start_server(limits__preauth_per_ip=3)
        held = []
        for _ in range(3):
            c = self.client(s).connect()
            c.open_stream()
            held.append(c)
        fourth = self.client(s)
        try:
            fourth.connect()
            fourth.send(Client.stream_header())
        except OSError:
            pass
        seen = fourth.expect_closed(5)
        for kind, e in seen:
            if kind == 'stanza':
                self.assertEqual(e.tag, q(NS_STREAM, 'error'), to_str(e))
                self.assertEqual(stream_error_condition(e), 'policy-violation', to_str(e))
        # The held ones are unaffected.
        for c in held:
            self.assertTrue(c.is_open(0.05))
        # Freeing a slot lets a new connection in (the server notices the close).
        held.pop().close()

        def can_connect():
            c = Client(s)
            try:
                c.connect()
                c.open_stream()
                return True
            except (AssertionError, OSError):
                return False
            finally:
                c.close()
        wait_for(can_connect, 5, 'a pre-auth slot after closing one')

    def test_authenticated_not_counted(self):
        s = self.start_server(limits__preauth_per_ip=2)
        a = self.client(s)
        a.login('alice', USERS['alice'], resource='1')
        b = self.client(s)
        b.login('bob', USERS['bob'], resource='1')
        c = self.client(s)
        c.login('alice', USERS['alice'], resource='2')

    def test_preauth_timeout(self):
        s = self.start_server(c2s__preauth_timeout=2)
        c = self.client(s).connect()
        c.open_stream()
        t0 = time.monotonic()
        c.assert_stream_error('connection-timeout', timeout=8)
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.0, 'closed too early')

    def test_preauth_timeout_silent_connection(self):
        s = self.start_server(c2s__preauth_timeout=2)
        c = self.client(s).connect()
        seen = c.expect_closed(8)
        for kind, e in seen:
            if kind == 'stanza':
                self.assertEqual(stream_error_condition(e), 'connection-timeout', to_str(e))

    def test_preauth_timeout_spares_authenticated(self):
        s = self.start_server(c2s__preauth_timeout=1, c2s__idle_ping=60)
        c = self.client(s)
        c.login('alice', USERS['alice'], resource='stay')
        c.expect_nothing(2.0)
        self.assertEqual(c.ping().get('type'), 'result')


class RoutingSafetyTest(Base):
    def test_spoofed_from_overwritten(self):
        a = self.logged_in('alice', 'a')
        b = self.logged_in('bob', 'b')
        a.send("<message from='bob@localhost/fake' to='%s' type='chat' id='sp1'><body>hi</body></message>" % b.jid)
        m = b.recv_until(lambda s: s.tag == q(NS_CLIENT, 'message'))
        self.assertEqual(m.get('from'), a.jid)
        self.assertEqual(m.get('id'), 'sp1')

    def test_spoofed_from_other_domain(self):
        a = self.logged_in('alice', 'a')
        b = self.logged_in('bob', 'b')
        a.send("<message from='admin@example.org' to='%s' type='chat' id='sp2'><body>hi</body></message>" % b.jid)
        m = b.recv_until(lambda s: s.tag == q(NS_CLIENT, 'message'))
        self.assertEqual(m.get('from'), a.jid)

    def test_pipelined_after_starttls_discarded(self):
        c = self.client().connect()
        c.open_stream()
        c.send("<starttls xmlns='%s'/><message to='bob@localhost'><body>injected</body></message>" % NS_TLS)
        c.starttls(send=False)
        _, features = c.open_stream()
        self.assertIn('SCRAM-SHA-256', c.mechanisms(features))
        c.auth_scram('alice', USERS['alice'])
        c._new_parser()
        c.open_stream()
        c.bind('x')
        self.assertEqual(c.ping().get('type'), 'result')

    def test_starttls_twice(self):
        c = self.opened(tls=True)
        c.send("<starttls xmlns='%s'/>" % NS_TLS)
        kind, e = c.next_event()
        self.assertEqual(kind, 'stanza')
        # RFC 6120 5.4.2.2 allows <failure/> then close; a stream error is also acceptable.
        self.assertIn(e.tag, (q(NS_TLS, 'failure'), q(NS_STREAM, 'error')), to_str(e))
        c.expect_closed(5)


class AbruptDisconnectTest(Base):
    def _state(self, state, rst):
        c = Client(self.s)
        try:
            if state == 'direct-tls-handshake':
                c.connect(self.s.tls_port)
                c.send(b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + b'\x00' * 20)
            else:
                c.connect()
            if state == 'tcp':
                pass
            elif state == 'half-header':
                c.send(Client.stream_header()[:40])
            elif state == 'header':
                c.open_stream()
            elif state == 'mid-starttls':
                c.open_stream()
                c.send("<starttls xmlns='%s'/>" % NS_TLS)
                self.assertEqual(c.recv_stanza().tag, q(NS_TLS, 'proceed'))
                c.send(b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + b'\x00' * 20)
            elif state == 'after-tls':
                c.open_stream()
                c.starttls()
            elif state == 'mid-sasl':
                c.open_stream()
                c.starttls()
                c.open_stream()
                c.scram_first('alice')
            elif state == 'after-sasl':
                c.login('alice', USERS['alice'], bind=False)
            elif state == 'after-bind':
                c.login('alice', USERS['alice'], resource='gone')
            elif state == 'mid-stanza':
                c.login('alice', USERS['alice'], resource='gone2')
                c.send("<message to='bob@localhost'><body>hal")
            elif state == 'pending-output':
                c.login('alice', USERS['alice'], resource='gone3')
                for i in range(50):
                    c.send("<iq type='get' id='p%d' to='localhost'><ping xmlns='%s'/></iq>" % (i, NS_PING))
        finally:
            if rst:
                c.reset()
            else:
                c.close()

    STATES = ('tcp', 'half-header', 'header', 'mid-starttls', 'after-tls', 'mid-sasl', 'after-sasl',
              'after-bind', 'mid-stanza', 'pending-output', 'direct-tls-handshake')

    def test_abrupt_close(self):
        for state in self.STATES:
            with self.subTest(state=state):
                self._state(state, rst=False)
                self.s.assert_alive()
        self.assert_login_works()

    def test_abrupt_reset(self):
        for state in self.STATES:
            with self.subTest(state=state):
                self._state(state, rst=True)
                self.s.assert_alive()
        self.assert_login_works()

    def test_peer_of_vanished_session(self):
        # bob vanishes; alice's message to his full JID must not crash anything
        b = self.logged_in('bob', 'v')
        bjid = b.jid
        b.reset()
        a = self.logged_in('alice', 'a')
        for i in range(20):
            a.send("<message to='%s' type='chat' id='v%d'><body>x</body></message>" % (bjid, i))
        self.assertEqual(a.ping().get('type'), 'result')
        self.assert_login_works()


if __name__ == '__main__':
    main()
