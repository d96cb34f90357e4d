"""SCRAM -PLUS channel binding (RFC 5802, XEP-0440): both types the server
offers, tls-exporter (RFC 9266) and tls-server-end-point (RFC 5929), under
both -PLUS mechanisms, over STARTTLS and direct TLS, with the binding data
computed here from the TLS session rather than by the server's code."""

import hashlib
import itertools
import os
import ssl
import unittest

from hearth import (DOMAIN, NS_SASL, NS_SASL_CB, Client, SaslFailure, Server, main, q,
                    to_str)

USERS = {'alice': 'wonderland'}
PLUS = ('SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS')
TYPES = ('tls-exporter', 'tls-server-end-point')
_keylogs = itertools.count()  # one key log per TLS session: tls_exporter() reads the only one


class ChannelBindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=USERS)
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.server.assert_alive()

    def tls_client(self, direct_tls=False, max_tls=None):
        """A client past TLS with features read; its TLS secrets go to a key log."""
        c = Client(self.server)
        self.clients.append(c)
        c.keylog = os.path.join(self.server.data_dir, 'keylog-%d' % next(_keylogs))
        orig = c.ssl_context

        def ctx():
            x = orig()
            if max_tls:
                x.maximum_version = max_tls
            return x
        c.ssl_context = ctx
        c.connect(direct_tls=direct_tls)
        c.open_stream()
        if not direct_tls:
            c.starttls()
            c.open_stream()
        return c

    @staticmethod
    def offered_types(features):
        cb = features.find(q(NS_SASL_CB, 'sasl-channel-binding'))
        if cb is None:
            return []
        return [e.get('type') for e in cb.findall(q(NS_SASL_CB, 'channel-binding'))]

    def test_both_types_advertised_with_tls13(self):
        for direct in (False, True):
            c = self.tls_client(direct_tls=direct)
            self.assertEqual(c.tls_version(), 'TLSv1.3')
            self.assertEqual(self.offered_types(c.features), list(TYPES), to_str(c.features))
            mechs = c.mechanisms(c.features)
            for m in PLUS:
                self.assertIn(m, mechs)

    def test_plus_login_with_each_type(self):
        for direct in (False, True):
            for mech in PLUS:
                for kind in TYPES:
                    with self.subTest(direct_tls=direct, mech=mech, type=kind):
                        c = self.tls_client(direct_tls=direct)
                        data = c.channel_binding(kind)
                        self.assertEqual(len(data), 32)
                        reply = c.auth_scram('alice', USERS['alice'], mech=mech,
                                             gs2='p=%s,,' % kind, cb_data=data)
                        self.assertEqual(reply.tag, q(NS_SASL, 'success'))
                        c._new_parser()
                        c.open_stream()
                        self.assertEqual(c.bind('cb'), 'alice@%s/cb' % DOMAIN)
                        c.close()

    def test_foreign_binding_data_refused(self):
        # What a man in the middle could send: another TLS session's exporter
        # (his own session with the server), another certificate's hash (his
        # own certificate); and one type's data under the other type's name.
        other = self.tls_client()
        forged = {'tls-exporter': other.channel_binding('tls-exporter'),
                  'tls-server-end-point': hashlib.sha256(b'another certificate').digest()}
        for mech in PLUS:
            for kind in TYPES:
                c = self.tls_client()
                with self.assertRaises(SaslFailure) as cm:
                    c.auth_scram('alice', USERS['alice'], mech=mech, gs2='p=%s,,' % kind,
                                 cb_data=forged[kind])
                self.assertEqual(cm.exception.condition, 'not-authorized')
        c = self.tls_client()
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], mech='SCRAM-SHA-256-PLUS',
                         gs2='p=tls-server-end-point,,', cb_data=c.channel_binding('tls-exporter'))

    def test_y_refused_when_binding_offered(self):
        # RFC 5802 6: 'y' says "I bind but saw no -PLUS": a stripped offer.
        c = self.tls_client()
        with self.assertRaises(SaslFailure):
            c.auth_scram('alice', USERS['alice'], gs2='y,,')

    def test_tls12_offers_no_binding(self):
        # Channel binding only with TLS 1.3 (docs/protocols.md): no -PLUS, no
        # XEP-0440 feature, and 'y' is then an honest answer.
        c = self.tls_client(max_tls=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(c.tls_version(), 'TLSv1.2')
        self.assertEqual(self.offered_types(c.features), [])
        self.assertFalse([m for m in c.mechanisms(c.features) if m.endswith('-PLUS')])
        c.auth_scram('alice', USERS['alice'], gs2='y,,')


if __name__ == '__main__':
    main()
