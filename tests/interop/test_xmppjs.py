"""Interop with xmpp.js (@xmpp/client 0.14, pinned in tests/web/package.json) over hearthd's
WebSocket transport (RFC 7395): a node client logs in at /xmpp-websocket, gets its roster, sends
presence and a message to a user on a raw TCP stream (the harness client) and gets one back;
over ws:// on the HTTP port and over wss:// on the HTTPS port; a wrong password is refused.

The node side is tests/web/xmppjs_client.mjs; it prints its result as JSON, asserted here."""

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'web'))
sys.path.insert(0, str(HERE.parent / 'integration'))

import webrun  # noqa: E402
from hearth import StreamClosed, main  # noqa: E402
from imlib import IMTestCase, is_msg, is_pres, make_state  # noqa: E402

STEP_S = 10      # deadline of each step, on both sides
RUN_S = 60       # deadline of one node run


class XmppJsTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder'}

    def setUp(self):
        webrun.node_binary()
        webrun.require_packages('@xmpp/client')

    def web_server(self, https=False):
        s = self.start_server(**webrun.http_settings(https=https))
        ports = webrun.require_http(s, *(('http', 'https') if https else ('http',)))
        return s, ports

    def friends_with_bob(self, s):
        """alice and bob subscribed both ways (over TCP), then alice offline and bob online
        over TCP with resource 'tcp'; returns bob's client."""
        a = self.connect(s, 'alice', resource='setup')
        b = self.connect(s, 'bob', resource='tcp')
        make_state(self, a, b, 'both')
        a.logout()
        b.wait(lambda st: is_pres(st, from_='alice@localhost/setup', type_='unavailable'),
               what='alice going offline')
        return b

    def wait_beside(self, run, client, pred, timeout, what):
        """client.wait(pred) while the node script runs: a script that ends first fails the
        test at once with its own account of what went wrong."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return client.wait(pred, timeout=min(1.0, max(deadline - time.monotonic(), 0.01)), what=what)
            except StreamClosed:
                raise
            except AssertionError:
                if not run.running():
                    self.fail('the node script ended before %s:\n%s' % (what, webrun.describe(run.wait(1))))
                if time.monotonic() >= deadline:
                    raise

    def chat_over(self, s, service, env=None):
        bob = self.friends_with_bob(s)
        body = 'hello from xmpp.js — ünïcödé "quoted" <&>'
        reply = 'pong from TCP — 你好'
        config = {'service': service, 'domain': 'localhost', 'username': 'alice',
                  'password': self.users['alice'], 'resource': 'xmppjs', 'peer': 'bob@localhost/tcp',
                  'body': body, 'reply': reply, 'step_ms': STEP_S * 1000, 'total_ms': RUN_S * 1000}
        with webrun.NodeRun('xmppjs_client.mjs', config, env=env) as run:
            p = self.wait_beside(run, bob, lambda st: is_pres(st, from_='alice@localhost/xmppjs'),
                                 RUN_S, "alice's presence from xmpp.js")
            self.assertEqual(p.findtext('{jabber:client}status'), 'xmpp.js over WebSocket')
            m = self.wait_beside(run, bob, lambda st: is_msg(st, from_='alice@localhost/xmppjs'),
                                 STEP_S * 2, 'the message from xmpp.js')
            self.assertEqual(m.get('type'), 'chat')
            self.assertEqual(m.get('id'), 'xmppjs-msg-1')
            self.assertEqual(m.findtext('{jabber:client}body'), body)
            bob.message('alice@localhost/xmppjs', reply, id_='tcp-reply-1')
            result = run.wait(RUN_S)
        self.assertTrue(result['ok'], webrun.describe(result))
        self.assertEqual(result['jid'], 'alice@localhost/xmppjs')
        # xmpp.js prefers SCRAM-SHA-1 to PLAIN; hearthd offers no PLAIN without TLS
        self.assertEqual(result['mechanism'], 'SCRAM-SHA-1')
        self.assertIn({'jid': 'bob@localhost', 'subscription': 'both', 'name': None}, result['roster'])
        self.assertEqual(len(result['roster']), 1, result['roster'])
        self.assertEqual(result['self_presence'], {'from': 'alice@localhost/xmppjs',
                                                   'status': 'xmpp.js over WebSocket'})
        self.assertEqual(result['peer_presence'], {'from': 'bob@localhost/tcp'})
        self.assertEqual(result['received'], {'from': 'bob@localhost/tcp', 'to': 'alice@localhost/xmppjs',
                                              'type': 'chat', 'body': reply})
        # xmpp.js closed its stream: bob sees alice go offline
        bob.wait(lambda st: is_pres(st, from_='alice@localhost/xmppjs', type_='unavailable'),
                 what='alice going offline after the WebSocket closed')
        return result

    def test_websocket(self):
        s, ports = self.web_server()
        self.chat_over(s, 'ws://127.0.0.1:%d/xmpp-websocket' % ports['http'])

    def test_secure_websocket(self):
        # node trusts the test server's generated certificate, for the name localhost
        s, ports = self.web_server(https=True)
        self.chat_over(s, 'wss://localhost:%d/xmpp-websocket' % ports['https'],
                       env={'NODE_EXTRA_CA_CERTS': s.cert})

    def test_wrong_password(self):
        s, ports = self.web_server()
        config = {'service': 'ws://127.0.0.1:%d/xmpp-websocket' % ports['http'], 'domain': 'localhost',
                  'username': 'alice', 'password': 'not the password', 'resource': 'xmppjs',
                  'mode': 'auth-fail', 'step_ms': STEP_S * 1000, 'total_ms': RUN_S * 1000}
        with webrun.NodeRun('xmppjs_client.mjs', config) as run:
            result = run.wait(RUN_S)
        self.assertTrue(result['ok'], webrun.describe(result))
        self.assertEqual(result['sasl_failure'], 'not-authorized', webrun.describe(result))


if __name__ == '__main__':
    main()
