"""The web transports: XEP-0156 discovery, the web client's files, XMPP over WebSocket
(RFC 7395) and over BOSH (XEP-0124/0206), each against the same c2s and modules as TCP. A web
client talks with a TCP client; plain HTTP counts as encrypted only from a trusted proxy;
every bad input (a bad upgrade, binary, oversized or unmasked frames, a frame that is not one
whole stanza, a BOSH rid out of the window, an unknown sid, a body that is not a BOSH body) gets
its defined error and the server goes on; a lost BOSH answer is sent again; a session resumes
over a new WebSocket."""

import base64
import os
import shutil
import socket
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from hearth import (DOMAIN, NS_SASL, NS_STREAM, Server, StreamClosed, main, q,
                    stream_error_condition, tls_server_end_point, to_str, wait_for)
from imlib import IMClient, IMTestCase, is_iq, is_msg, is_pres
from test_sm import LOST, NS_SM3, SMClient, sm_ns
from weblib import (FRAMING_CLOSE, NS_FRAMING, NS_HTTPBIND, NS_XBOSH, BoshMixin, WsRefused,
                    bosh_client, framing_open, http_connection, http_request, ws_client,
                    ws_handshake, ws_request)

WEB = {'http.port': '0', 'https.port': '0'}
LISTENERS = ('c2s', 'c2s_direct_tls', 'http', 'https')
XML_HEADERS = {'Content-Type': 'text/xml; charset=utf-8'}


class WebTestCase(IMTestCase):
    def web_server(self, users=None, **settings):
        kw = dict(WEB)
        kw.update({k.replace('__', '.'): v for k, v in settings.items()})
        s = Server(users=self.users if users is None else users, settings=kw, listeners=LISTENERS)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def ws(self, server, user, resource=None, cls=IMClient, secure=True, presence=False, **kw):
        c = ws_client(cls, server, secure=secure, **kw)
        self.addCleanup(c.close)
        c.user, c.password = user, self.users[user]
        c.login(user, c.password, resource=resource)
        if presence:
            c.presence()
        return c

    def bosh(self, server, user, resource=None, secure=True, presence=False, **kw):
        c = bosh_client(IMClient, server, secure=secure, **kw)
        self.addCleanup(c.close)
        c.user, c.password = user, self.users[user]
        c.login(user, c.password, resource=resource)
        if presence:
            c.presence()
        return c

    def tcp(self, server, user, resource=None):
        return self.connect(server, user, resource=resource, roster=False, presence=False)

    def exchange(self, web, tcp):
        """A chat message each way between a web client and a TCP client."""
        web.message(tcp.jid, 'from the web', id_='w1')
        m = tcp.wait(lambda s: is_msg(s, id_='w1'))
        self.assertEqual(m.get('from'), web.jid)
        self.assertEqual(m.findtext(q('jabber:client', 'body')), 'from the web')
        tcp.message(web.jid, 'from tcp', id_='t1')
        m = web.wait(lambda s: is_msg(s, id_='t1'))
        self.assertEqual(m.get('from'), tcp.jid)
        self.assertEqual(m.findtext(q('jabber:client', 'body')), 'from tcp')


# ---------------------------------------------------------------------------------------------


class DiscoveryTest(WebTestCase):
    def test_host_meta_names_both_endpoints(self):
        s = self.web_server()
        for secure, ws, http in ((False, 'ws', 'http'), (True, 'wss', 'https')):
            port = s.ports['https' if secure else 'http']
            st, h, body = http_request(s, 'GET', '/.well-known/host-meta', secure=secure,
                                       headers={'Host': 'chat.example:%d' % port})
            self.assertEqual(st, 200)
            self.assertIn('xrd+xml', h['content-type'])
            self.assertEqual(h.get('access-control-allow-origin'), '*')
            xrd = ET.fromstring(body)
            links = {l.get('rel'): l.get('href') for l in xrd}
            self.assertEqual(links['urn:xmpp:alt-connections:websocket'],
                             '%s://chat.example:%d/xmpp-websocket' % (ws, port))
            self.assertEqual(links['urn:xmpp:alt-connections:xbosh'],
                             '%s://chat.example:%d/http-bind' % (http, port))
            st, h, body = http_request(s, 'GET', '/.well-known/host-meta.json', secure=secure,
                                       headers={'Host': 'chat.example:%d' % port})
            self.assertEqual(st, 200)
            self.assertEqual(h['content-type'], 'application/json')
            import json
            links = {l['rel']: l['href'] for l in json.loads(body)['links']}
            self.assertEqual(links['urn:xmpp:alt-connections:websocket'],
                             '%s://chat.example:%d/xmpp-websocket' % (ws, port))

    def test_host_meta_behind_a_proxy_names_its_scheme(self):
        s = self.web_server()
        st, _, body = http_request(s, 'GET', '/.well-known/host-meta.json', secure=False,
                                   headers={'Host': 'chat.example', 'X-Forwarded-Proto': 'https'})
        self.assertEqual(st, 200)
        self.assertIn(b'wss://chat.example/xmpp-websocket', body)

    def test_unknown_paths_and_bad_requests(self):
        s = self.web_server()
        st, _, _ = http_request(s, 'GET', '/nothing-here')
        self.assertEqual(st, 404)
        st, _, _ = http_request(s, 'GET', '/.well-known/host-meta', headers={'Host': 'a b<c'})
        self.assertEqual(st, 400)
        # Not HTTP at all: 400 and the connection closes.
        sock = socket.create_connection(('127.0.0.1', s.ports['http']), timeout=5)
        sock.sendall(b'\x16\x03\x01 this is not HTTP\r\n\r\n')
        data = sock.recv(4096)
        self.assertTrue(data.startswith(b'HTTP/1.1 400'), data)
        sock.close()
        # Headers past the bound: 431.
        st, _, _ = http_request(s, 'GET', '/', headers={'X-Big': 'x' * 20000})
        self.assertEqual(st, 431)
        s.assert_alive()

    def test_keep_alive_serves_requests_in_order(self):
        s = self.web_server()
        conn = http_connection(s, secure=True)
        for path in ('/.well-known/host-meta', '/nothing', '/.well-known/host-meta.json'):
            st, _, _ = http_request(s, 'GET', path, conn=conn)
            self.assertEqual(st, 404 if path == '/nothing' else 200)
        conn.close()

    def test_chat_files_are_served_from_chat_root(self):
        root = tempfile.mkdtemp(prefix='hearth-chat-')
        self.addCleanup(shutil.rmtree, root)
        os.makedirs(os.path.join(root, 'dist'))
        with open(os.path.join(root, 'index.html'), 'w') as f:
            f.write('<!doctype html><title>chat</title>')
        with open(os.path.join(root, 'dist', 'app.js'), 'wb') as f:
            f.write(b'x' * (600 * 1024))  # larger than one piece of a streamed answer
        s = self.web_server(http__chat_root=root)
        st, h, body = http_request(s, 'GET', '/chat/')
        self.assertEqual(st, 200)
        self.assertTrue(h['content-type'].startswith('text/html'))
        self.assertEqual(body, b'<!doctype html><title>chat</title>')
        st, h, body = http_request(s, 'GET', '/chat/dist/app.js')
        self.assertEqual(st, 200)
        self.assertTrue(h['content-type'].startswith('text/javascript'))
        self.assertEqual(len(body), 600 * 1024)
        st, h, _ = http_request(s, 'GET', '/chat')
        self.assertEqual((st, h.get('location')), (301, '/chat/'))
        for bad in ('/chat/../hearthd.conf', '/chat/dist/missing.js', '/chat/dist'):
            st, _, _ = http_request(s, 'GET', bad)
            self.assertEqual(st, 404, bad)
        st, _, _ = http_request(s, 'POST', '/chat/index.html', body=b'x')
        self.assertEqual(st, 405)


# ---------------------------------------------------------------------------------------------


class WebSocketTest(WebTestCase):
    def test_wss_login_and_chat_with_a_tcp_client(self):
        s = self.web_server()
        w = self.ws(s, 'alice', 'web')
        t = self.tcp(s, 'bob', 'tcp')
        self.assertEqual(w.jid, 'alice@localhost/web')
        self.exchange(w, t)
        r = w.ping()
        self.assertEqual(r.get('type'), 'result')
        # An orderly close: <close/> answered with <close/>, then the WebSocket close.
        w.close_stream()
        seen = w.expect_closed()
        self.assertEqual([k for k, _ in seen], ['close'])
        self.assertEqual(w.ws_close_code, 1000)

    def test_ws_from_a_trusted_proxy_counts_as_encrypted(self):
        s = self.web_server()  # c2s.tls=required, http.trusted_proxies=loopback
        w = self.ws(s, 'alice', 'plain', secure=False)
        t = self.tcp(s, 'bob')
        self.exchange(w, t)

    def test_ws_from_elsewhere_needs_tls(self):
        s = self.web_server(http__trusted_proxies='192.0.2.1')
        c = ws_client(IMClient, s, secure=False)
        self.addCleanup(c.close)
        c.connect()
        c.send(framing_open())
        c.recv_header()
        self.assertEqual(c.assert_ws_stream_error(), 'policy-violation')
        # wss is fine.
        w = self.ws(s, 'alice')
        self.assertEqual(w.ping().get('type'), 'result')

    def test_wss_offers_and_accepts_channel_binding(self):
        s = self.web_server()
        c = ws_client(IMClient, s)
        self.addCleanup(c.close)
        c.connect()
        _, features = c.open_stream()
        mechs = c.mechanisms(features)
        self.assertIn('SCRAM-SHA-256-PLUS', mechs)
        cb = tls_server_end_point(c.sock.getpeercert(binary_form=True))
        c.auth_scram('alice', self.users['alice'], 'SCRAM-SHA-256-PLUS',
                     gs2='p=tls-server-end-point,,', cb_data=cb)
        c.open_stream()
        self.assertEqual(c.bind('cb'), 'alice@localhost/cb')

    def test_upgrade_answer_is_rfc_6455s_example(self):
        # RFC 6455 §1.3's own example, so that the server and this file's client cannot agree
        # on a wrong constant between themselves.
        s = self.web_server()
        port = s.ports['http']
        st, h, _, sock = ws_handshake(s, secure=False,
                                      request=ws_request('/xmpp-websocket', port,
                                                         'dGhlIHNhbXBsZSBub25jZQ=='))
        sock.close()
        self.assertEqual(st, 101)
        self.assertEqual(h['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
        self.assertEqual(h['upgrade'].lower(), 'websocket')
        self.assertEqual(h['connection'].lower(), 'upgrade')

    def test_upgrade_refusals(self):
        s = self.web_server(http__allowed_origins='https://chat.example')
        cases = [
            (dict(protocol='xmpp-other'), 400),
            (dict(protocol=None), 400),
            (dict(extra='', request=b'GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\n\r\n'), 426),
            (dict(extra='', request=ws_request('/xmpp-websocket', 1, 'x' * 24).replace(
                b'Version: 13', b'Version: 8')), 426),
            (dict(request=ws_request('/xmpp-websocket', 1, 'short')), 400),
            (dict(origin='https://evil.example'), 403),
            (dict(path='/elsewhere'), 404),
        ]
        for kw, status in cases:
            st, h, body, sock = ws_handshake(s, secure=False, **kw)
            sock.close()
            self.assertEqual(st, status, (kw, body))
        st, h, _, sock = ws_handshake(s, secure=False, origin='https://chat.example')
        sock.close()
        self.assertEqual(st, 101)
        self.assertEqual(h['sec-websocket-protocol'], 'xmpp')
        st, _, _ = http_request(s, 'POST', '/xmpp-websocket', body=b'x')
        self.assertEqual(st, 405)
        s.assert_alive()

    def bad_frame(self, s, send, code=None, cond=None, **settings):
        c = self.ws(s, 'alice', 'bad')
        send(c)
        seen = c.expect_closed()
        if cond:
            self.assertEqual([k for k, _ in seen], ['stanza', 'close'], seen)
            self.assertEqual(seen[0][1].tag, q(NS_STREAM, 'error'))
            self.assertEqual(stream_error_condition(seen[0][1]), cond)
        else:
            self.assertEqual(seen, [])
        self.assertEqual(c.ws_close_code, code or 1000)
        return c

    def test_bad_frames_get_their_errors(self):
        s = self.web_server(c2s__max_stanza='8192')
        # RFC 6455: a binary frame (1003), a message past the bound (1009), an unmasked
        # client frame (1002).
        self.bad_frame(s, lambda c: c.send_frame(0x2, b"<presence xmlns='jabber:client'/>"), 1003)
        self.bad_frame(s, lambda c: c.send_frame(
            0x1, b"<message xmlns='jabber:client'><body>" + b'x' * 20000 + b'</body></message>'), 1009)
        self.bad_frame(s, lambda c: c.send_frame(0x1, b"<presence xmlns='jabber:client'/>", mask=False),
                       1002)
        # RFC 7395 §3.3.3: one whole element per message, else a stream error.
        ping = b"<iq xmlns='jabber:client' type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
        self.bad_frame(s, lambda c: c.send_frame(0x1, ping % b'a' + ping % b'b'), cond='not-well-formed')
        self.bad_frame(s, lambda c: c.send_frame(0x1, (ping % b'a')[:-5]), cond='not-well-formed')
        self.bad_frame(s, lambda c: c.send_frame(0x1, b'just text'), cond='not-well-formed')
        # A stanza without its namespace (as on a TCP stream) is not RFC 7395.
        self.bad_frame(s, lambda c: c.send_frame(0x1, b"<presence/>"), cond='invalid-namespace')
        # The server is fine, and a stanza in fragments is one message.
        c = self.ws(s, 'bob', 'frag')
        c.send_frame(0x1, b"<iq xmlns='jabber:client' type='get' id='f'>", fin=False)
        c.send_frame(0x0, b"<ping xmlns='urn:xmpp:ping'/></iq>")
        self.assertEqual(c.wait(lambda x: is_iq(x, id_='f')).get('type'), 'result')
        # Pings are answered.
        c.send_frame(0x9, b'are you there')
        wait_for(lambda: c.pump(0.05) or c.pongs, 5, 'a pong')
        self.assertEqual(c.pongs, [b'are you there'])

    def test_peer_close_frame_ends_the_stream(self):
        s = self.web_server()
        w = self.ws(s, 'alice', presence=True)
        t = self.tcp(s, 'bob')
        w.send("<presence to='%s'/>" % t.jid)
        t.wait(lambda x: is_pres(x, from_=w.jid))
        w.send_close(1000)
        self.assertNotIn('close', [k for k, _ in w.expect_closed()])  # no <close/>: it is gone
        self.assertEqual(w.ws_close_code, 1000)
        u = t.wait(lambda x: is_pres(x, from_=w.jid, type_='unavailable'))
        self.assertIsNotNone(u)

    def test_resumption_over_a_new_websocket(self):
        s = self.web_server(c2s__resume_timeout='30')
        a = self.ws(s, 'alice', 'web', cls=SMClient)
        a.roster_get()
        a.presence()
        a.sync()
        el = a.enable(resume=True)
        self.assertEqual(el.get('resume'), 'true')
        b = self.tcp(s, 'bob')
        b.message(a.jid, 'one', id_='m1')
        a.wait(lambda x: is_msg(x, id_='m1'))
        a.request_ack()  # the server knows where we are
        a.send_a()
        handled = a.h_in
        a.reset()  # the TCP connection under the WebSocket goes, no close frame
        s.wait_log(LOST, timeout=10)
        for i in (2, 3):
            b.message(a.jid, 'n%d' % i, id_='m%d' % i)
        b.sync()
        n = ws_client(SMClient, s)
        self.addCleanup(n.close)
        n.user, n.password = 'alice', self.users['alice']
        n.login('alice', n.password, bind=False)
        r = n.resume(a.sm_id, handled)
        self.assertEqual(r.tag, q(NS_SM3, 'resumed'), to_str(r))
        n.jid = a.jid
        got = [n.wait(lambda x, i=i: is_msg(x, id_='m%d' % i)) for i in (2, 3)]
        self.assertEqual([m.findtext(q('jabber:client', 'body')) for m in got], ['n2', 'n3'])
        n.sync()
        self.assertFalse([x for x in n.backlog if is_msg(x, id_='m1')], 'm1 was acknowledged')
        # The resumed session is the same one: bob still reaches it.
        b.message(a.jid, 'after', id_='m4')
        n.wait(lambda x: is_msg(x, id_='m4'))


def assert_ws_stream_error(self, timeout=5):
    """A stream error, then <close/> and the WebSocket's end; returns the condition."""
    kind, elem = self.next_event(timeout)
    if kind != 'stanza' or elem.tag != q(NS_STREAM, 'error'):
        raise AssertionError('expected a stream error, got %s %s' % (kind, elem))
    rest = self.expect_closed(timeout)
    if [k for k, _ in rest] != ['close']:
        raise AssertionError('after the stream error expected <close/>, got %s' % rest)
    return stream_error_condition(elem)


from weblib import WebSocketMixin  # noqa: E402
WebSocketMixin.assert_ws_stream_error = assert_ws_stream_error


# ---------------------------------------------------------------------------------------------


class RawBosh:
    """BOSH requests written by hand, for the exact rid and sid cases."""

    def __init__(self, test, server, secure=True, wait=5, hold=1):
        self.test, self.server, self.secure = test, server, secure
        self.rid = 5000
        self.sid = None
        self.wait, self.hold = wait, hold

    def post(self, payload='', rid=None, sid=None, **attrs):
        rid = self.rid if rid is None else rid
        a = ["xmlns='%s'" % NS_HTTPBIND, "rid='%d'" % rid]
        sid = self.sid if sid is None else sid
        if sid:
            a.append("sid='%s'" % sid)
        for k, v in attrs.items():
            a.append("%s='%s'" % (k.replace('__', ':'), v))
        body = ('<body %s>%s</body>' if payload else '<body %s/>%s') % (' '.join(a), payload)
        st, h, data = http_request(self.server, 'POST', '/http-bind', body.encode(), XML_HEADERS,
                                   secure=self.secure)
        self.test.assertEqual(st, 200, data)
        self.test.assertEqual(h['content-type'], 'text/xml; charset=utf-8')
        return ET.fromstring(data), data

    def post_async(self, payload='', rid=None, **attrs):
        out = {}

        def run():
            try:
                out['answer'] = self.post(payload, rid, **attrs)
            except BaseException as e:
                out['error'] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, out

    def create(self, **attrs):
        attrs.setdefault('to', DOMAIN)
        attrs.setdefault('wait', self.wait)
        attrs.setdefault('hold', self.hold)
        body, _ = self.post(rid=self.rid, ver='1.11', xmpp__version='1.0', xmlns__xmpp=NS_XBOSH,
                            **attrs)
        self.sid = body.get('sid')
        return body

    def next(self):
        self.rid += 1
        return self.rid


def ping(id_):
    return "<iq xmlns='jabber:client' type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % id_


def result_ids(body):
    return [c.get('id') for c in body if c.tag == q('jabber:client', 'iq')]


class BoshTest(WebTestCase):
    def test_session_creation_attributes(self):
        s = self.web_server(bosh__max_wait='30')
        r = RawBosh(self, s)
        body = r.create(wait=600, hold=5)
        self.assertEqual(len(body.get('sid')), 32)
        self.assertEqual(body.get('wait'), '30')   # lowered to bosh.max_wait
        self.assertEqual(body.get('hold'), '1')    # lowered to one
        self.assertEqual(body.get('requests'), '2')
        self.assertEqual(body.get('inactivity'), '60')
        self.assertEqual(body.get('polling'), '2')
        self.assertEqual(body.get('ver'), '1.11')
        self.assertEqual(body.get('from'), DOMAIN)
        self.assertTrue(body.get('authid'))
        self.assertEqual(body.get(q(NS_XBOSH, 'version')), '1.0')
        self.assertIsNone(body.get('type'))
        features = body.find(q(NS_STREAM, 'features'))
        self.assertIsNotNone(features, to_str(body))
        mechs = [m.text for m in features.iter(q(NS_SASL, 'mechanism'))]
        self.assertIn('SCRAM-SHA-256', mechs)
        self.assertNotIn('SCRAM-SHA-256-PLUS', mechs)  # one TLS connection per request: no binding
        # Another domain is not served here.
        r2 = RawBosh(self, s)
        body = r2.create(to='elsewhere.example')
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'host-unknown'))

    def test_login_and_chat_with_a_tcp_client(self):
        s = self.web_server()
        b = self.bosh(s, 'alice', 'bosh')
        self.assertEqual(b.jid, 'alice@localhost/bosh')
        t = self.tcp(s, 'bob', 'tcp')
        self.exchange(b, t)
        # Plain HTTP from a trusted proxy (loopback by default) counts as encrypted.
        p = self.bosh(s, 'carol', 'plain', secure=False)
        self.exchange(p, t)

    def test_plain_http_from_elsewhere_needs_tls(self):
        s = self.web_server(http__trusted_proxies='192.0.2.1')
        r = RawBosh(self, s, secure=False)
        body = r.create()
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'remote-stream-error'))
        err = body.find(q(NS_STREAM, 'error'))
        self.assertEqual(stream_error_condition(err), 'policy-violation')
        b = self.bosh(s, 'alice')  # https is fine
        self.assertEqual(b.ping().get('type'), 'result')

    def test_a_lost_answer_is_sent_again(self):
        s = self.web_server()
        r = RawBosh(self, s)
        r.create()
        rid = r.next()
        wrong = base64.b64encode(b'\0alice\0wrong').decode()
        auth = "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, wrong)
        first, raw1 = r.post(auth, rid=rid)
        self.assertEqual([c.tag for c in first], [q(NS_SASL, 'failure')], to_str(first))
        # The client never saw that answer: the same request again gets the same answer, and
        # what it carried is not processed twice.
        again, raw2 = r.post(auth, rid=rid)
        self.assertEqual(raw2, raw1)
        body, _ = r.post(rid=r.next())
        self.assertNotEqual(body.get('type'), 'terminate')
        self.assertEqual(len(s.wait_log(r"authentication failed for 'alice'")), 1)

    def test_requests_are_processed_in_rid_order(self):
        s = self.web_server()
        b = self.bosh(s, 'alice', 'order')
        with b._lock:
            b._stopped = True  # no more requests of its own
        wait_for(lambda: b._outstanding == 0 or b.pump(0.1), 30, 'the held request answered')
        r = RawBosh(self, s)
        r.sid, r.rid = b.sid, b.rid
        msg = "<message xmlns='jabber:client' to='%s' id='%s'><body>x</body></message>"
        # The later rid first, on its own connection: it waits for the earlier one.
        t2, out2 = r.post_async(msg % (b.jid, 'second'), rid=r.rid + 1)
        s.wait_log(r'rid %d waits for %d' % (r.rid + 1, r.rid))
        body1, _ = r.post(msg % (b.jid, 'first'), rid=r.rid)
        t2.join(20)
        self.assertNotIn('error', out2)
        body2, _ = out2['answer']
        got = [c.get('id') for body in (body1, body2) for c in body
               if c.tag == q('jabber:client', 'message')]
        if len(got) < 2:  # the second came after the answers: the next request carries it
            body3, _ = r.post(rid=r.rid + 2)
            got += [c.get('id') for c in body3 if c.tag == q('jabber:client', 'message')]
        self.assertEqual(got, ['first', 'second'])

    def test_a_request_sent_again_while_held_replaces_it(self):
        s = self.web_server()
        r = RawBosh(self, s, wait=5)
        r.create()
        rid = r.next()
        t1, out1 = r.post_async(rid=rid)
        # The same rid again on another connection (the first one broke): the one held first
        # is answered at once, empty; the other is held in its place.
        start = time.monotonic()
        body2, _ = r.post(rid=rid)
        t1.join(10)
        self.assertIn('answer', out1, out1)
        self.assertIsNone(out1['answer'][0].get('type'))
        self.assertIsNone(body2.get('type'))
        s.wait_log(r'rid %d sent again' % rid)
        self.assertNotIn('out of the window', s.current_log())

    def test_rid_out_of_the_window_ends_the_session(self):
        s = self.web_server()
        r = RawBosh(self, s)
        r.create()
        body, _ = r.post(rid=r.rid + 5)
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'item-not-found'))
        s.wait_log(r'rid %d out of the window' % (r.rid + 5))
        body, _ = r.post(rid=r.next())
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'item-not-found'))
        # An old rid whose answer is no longer kept, likewise ('hold' 0: answered at once).
        r2 = RawBosh(self, s, hold=0)
        r2.create()
        for _ in range(3):
            body, _ = r2.post(rid=r2.next())
            self.assertIsNone(body.get('type'))
        body, _ = r2.post(rid=r2.rid - 2)
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'item-not-found'))
        s.assert_alive()

    def test_unknown_sid_and_bad_bodies(self):
        s = self.web_server()
        r = RawBosh(self, s)
        body, _ = r.post(rid=1, sid='0123456789abcdef0123456789abcdef')
        self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'item-not-found'))
        bad = [b'not xml at all', b"<body xmlns='jabber:client' rid='1'/>",
               b"<body xmlns='%s'/>" % NS_HTTPBIND.encode(),
               b"<body xmlns='%s' rid='x1'/>" % NS_HTTPBIND.encode(),
               b"<body xmlns='%s' rid='1'><message>" % NS_HTTPBIND.encode(),
               b"<!DOCTYPE body [<!ENTITY a 'b'>]><body xmlns='%s' rid='1'/>" % NS_HTTPBIND.encode()]
        for data in bad:
            st, h, out = http_request(s, 'POST', '/http-bind', data, XML_HEADERS)
            self.assertEqual(st, 200, data)
            body = ET.fromstring(out)
            self.assertEqual((body.get('type'), body.get('condition')), ('terminate', 'bad-request'),
                             data)
        st, h, _ = http_request(s, 'GET', '/http-bind')
        self.assertEqual(st, 405)
        self.assertIn('POST', h.get('allow', ''))
        # A body past 1 MiB is refused from its Content-Length, before it is read.
        sock = socket.create_connection(('127.0.0.1', s.ports['http']), timeout=5)
        sock.sendall(b'POST /http-bind HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n')
        self.assertTrue(sock.recv(4096).startswith(b'HTTP/1.1 413'))
        sock.close()
        # CORS preflight for a page of another origin.
        st, h, _ = http_request(s, 'OPTIONS', '/http-bind',
                                headers={'Origin': 'https://chat.example',
                                         'Access-Control-Request-Method': 'POST'})
        self.assertEqual(st, 204)
        self.assertEqual(h.get('access-control-allow-origin'), 'https://chat.example')
        self.assertIn('POST', h.get('access-control-allow-methods'))
        s.assert_alive()

    def test_origins_not_allowed_get_no_cors(self):
        s = self.web_server(http__allowed_origins='https://chat.example')
        r = RawBosh(self, s)
        for origin, allowed in (('https://chat.example', True), ('https://evil.example', False)):
            st, h, _ = http_request(s, 'POST', '/http-bind',
                                    b"<body xmlns='%s' rid='1' sid='00'/>" % NS_HTTPBIND.encode(),
                                    dict(XML_HEADERS, Origin=origin))
            self.assertEqual(st, 200)
            self.assertEqual(h.get('access-control-allow-origin'), origin if allowed else None)

    def test_terminate_ends_the_session(self):
        s = self.web_server()
        b = self.bosh(s, 'alice', 'bye', presence=True)
        t = self.tcp(s, 'bob')
        b.send("<presence to='%s'/>" % t.jid)
        t.wait(lambda x: is_pres(x, from_=b.jid))
        b.terminate("<presence type='unavailable' xmlns='jabber:client'/>")
        seen = b.expect_closed()
        self.assertIn('close', [k for k, _ in seen])
        t.wait(lambda x: is_pres(x, from_=b.jid, type_='unavailable'))
        r = RawBosh(self, s)
        body, _ = r.post(rid=b.rid + 1, sid=b.sid)
        self.assertEqual(body.get('condition'), 'item-not-found')

    def test_inactivity_ends_the_session(self):
        s = self.web_server(bosh__max_inactivity='2')
        b = self.bosh(s, 'alice', 'idle', presence=True, wait=1)
        t = self.tcp(s, 'bob')
        b.send("<presence to='%s'/>" % t.jid)
        t.wait(lambda x: is_pres(x, from_=b.jid))
        with b._lock:
            b._stopped = True  # the client goes away without a word
        t.wait(lambda x: is_pres(x, from_=b.jid, type_='unavailable'), timeout=20)
        s.wait_log(r'BOSH [0-9a-f]+: no request for 2 s')

    def test_stanzas_waiting_for_a_request_are_bounded(self):
        s = self.web_server()
        b = self.bosh(s, 'alice', 'slow', presence=True, wait=1)
        t = self.tcp(s, 'bob')
        b.send("<presence to='%s'/>" % t.jid)
        t.wait(lambda x: is_pres(x, from_=b.jid))
        with b._lock:
            b._stopped = True
        wait_for(lambda: b._outstanding == 0 or b.pump(0.1), 30, 'the held request answered')
        big = 'y' * 60000
        for i in range(20):  # 1.2 MB for a session nobody polls
            t.message(b.jid, big, id_='big%d' % i)
        s.wait_log(r'over 1048576 bytes wait for a request: lost', timeout=20)
        t.wait(lambda x: is_pres(x, from_=b.jid, type_='unavailable'), timeout=20)
        s.assert_alive()

    def test_many_sessions_move_to_their_home_workers(self):
        # The kernel spreads connections over the two workers (SO_REUSEPORT), so a session
        # lands on its home worker half the time: sessions are opened until one has moved.
        s = self.web_server()
        users = ['alice', 'bob', 'carol', 'dave']
        clients = []
        for i in range(32):
            c = self.bosh(s, users[i % 4], 'w%d' % i)
            self.assertEqual(c.ping().get('type'), 'result')
            clients.append(c)
            if i >= 3 and 'moving to home worker' in s.current_log():
                break
        self.assertIn('moving to home worker', s.current_log(), 'no move in 32 sessions')
        for c in clients:
            self.assertEqual(c.ping().get('type'), 'result')
        clients = clients[:4]
        t = self.tcp(s, 'alice', 'tcp')
        for c in clients[1:]:
            c.message(t.jid, 'hi', id_='from-%s' % c.user)
            t.wait(lambda x, c=c: is_msg(x, id_='from-%s' % c.user))


if __name__ == '__main__':
    main()
