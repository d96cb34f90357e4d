"""XMPP over WebSocket (RFC 7395) and BOSH (XEP-0124/0206) for the wire-level tests, standard
library only. Each is a mixin over hearth.Client (or a subclass such as imlib.IMClient or the
SM client): the stream, SASL, bind and IQ helpers stay the same, only how bytes travel changes.

    c = ws_client(IMClient, server)          # wss:// by default; secure=False for ws://
    c.login('alice', 'pw')
    b = bosh_client(IMClient, server)        # https:// by default
    b.login('bob', 'pw')

Raw helpers for the refusal tests: ws_handshake() returns the HTTP answer to an upgrade
request; http_request() sends one request and returns (status, headers, body)."""

import base64
import hashlib
import http.client
import os
import queue
import random
import re
import socket
import ssl
import struct
import threading
import time
import xml.etree.ElementTree as ET

from hearth import DOMAIN, NS_STREAM, Client, q, to_str

NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'
NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'
NS_XBOSH = 'urn:xmpp:xbosh'
WS_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def web_port(server, secure):
    name = 'https' if secure else 'http'
    if name not in server.ports:
        raise AssertionError('hearthd listens on no %s port (ports file: %r)' % (name, server.ports))
    return server.ports[name]


def tls_context(server):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=server.cert)
    ctx.check_hostname = True
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if hasattr(ssl, 'OP_IGNORE_UNEXPECTED_EOF'):
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def http_connection(server, secure=True, timeout=10):
    port = web_port(server, secure)
    if secure:
        return http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout,
                                           context=_NamedContext(tls_context(server)))
    return http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)


class _NamedContext:
    """An SSLContext whose connections check the certificate for DOMAIN (the tests connect to
    127.0.0.1; the certificate names localhost)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def wrap_socket(self, sock, server_hostname=None, **kw):
        return self.ctx.wrap_socket(sock, server_hostname=DOMAIN, **kw)

    def __getattr__(self, name):
        return getattr(self.ctx, name)


def http_request(server, method, path, body=None, headers=None, secure=True, conn=None):
    """One request; (status, {lower-case name: value}, body bytes)."""
    own = conn is None
    conn = conn or http_connection(server, secure)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            conn.close()


class WsRefused(AssertionError):
    def __init__(self, status, headers, body):
        super().__init__('WebSocket upgrade refused: %d %r' % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body


def _read_http_head(sock, deadline):
    """Reads an HTTP answer's head; (status, headers, rest of the bytes read)."""
    buf = b''
    while b'\r\n\r\n' not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError('no HTTP answer; got %r' % buf[:300])
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise AssertionError('connection closed before the HTTP answer; got %r' % buf[:300])
        buf += data
    head, rest = buf.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def ws_request(path, port, key, protocol='xmpp', origin=None, extra=''):
    lines = ['GET %s HTTP/1.1' % path, 'Host: %s:%d' % (DOMAIN, port), 'Upgrade: websocket',
             'Connection: Upgrade', 'Sec-WebSocket-Key: %s' % key, 'Sec-WebSocket-Version: 13']
    if protocol:
        lines.append('Sec-WebSocket-Protocol: %s' % protocol)
    if origin:
        lines.append('Origin: %s' % origin)
    return ('\r\n'.join(lines) + '\r\n' + extra + '\r\n').encode()


def ws_handshake(server, secure=True, path='/xmpp-websocket', protocol='xmpp', origin=None,
                 extra='', request=None, timeout=5):
    """Sends an upgrade request (or the raw request given) and returns (status, headers, body,
    sock); the caller closes sock."""
    port = web_port(server, secure)
    sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    if secure:
        sock = tls_context(server).wrap_socket(sock, server_hostname=DOMAIN)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(request or ws_request(path, port, key, protocol, origin, extra))
    deadline = time.monotonic() + timeout
    status, headers, rest = _read_http_head(sock, deadline)
    if status != 101:
        n = int(headers.get('content-length', '0'))
        while len(rest) < n and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
    elif not request:
        want = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if headers.get('sec-websocket-accept') != want:
            raise AssertionError('Sec-WebSocket-Accept %r, expected %r'
                                 % (headers.get('sec-websocket-accept'), want))
    return status, headers, rest, sock


def ws_frame(opcode, payload, fin=True, mask=True):
    """One client frame (masked, as RFC 6455 §5.3 requires of clients unless mask=False)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack('!H', n)
    else:
        head += bytes([mbit | 127]) + struct.pack('!Q', n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def framing_open(to=DOMAIN):
    return "<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, to)


FRAMING_CLOSE = "<close xmlns='%s'/>" % NS_FRAMING


_STANZA_START = re.compile(r'^(\s*<(?:iq|message|presence))(?=[\s/>])([^>]*)')


def with_client_ns(data):
    """A stanza written as on a TCP stream (namespace from the stream header) with the
    xmlns='jabber:client' that RFC 7395 §3.3.3 wants on each message."""
    m = _STANZA_START.match(data)
    if not m or 'xmlns=' in m.group(2):
        return data
    return m.group(1) + " xmlns='jabber:client'" + data[m.end(1):]


class WebSocketMixin:
    """hearth.Client's transport replaced by a WebSocket: every send is one text frame, every
    text message received is one element (<open/>, <close/> or a stanza)."""

    ws_secure = True
    ws_path = '/xmpp-websocket'
    ws_protocol = 'xmpp'
    ws_origin = None

    def connect(self, port=None, direct_tls=False, timeout=5):
        status, headers, rest, sock = ws_handshake(self.server, self.ws_secure, self.ws_path,
                                                   self.ws_protocol, self.ws_origin,
                                                   timeout=timeout)
        if status != 101:
            sock.close()
            raise WsRefused(status, headers, rest)
        if headers.get('sec-websocket-protocol') != 'xmpp':
            sock.close()
            raise AssertionError('upgrade without the xmpp subprotocol: %r' % headers)
        self.sock = sock
        self.tls = self.ws_secure
        self.ws_headers = headers
        self._wsbuf = bytearray()
        self._frag = None
        self.ws_close_code = None
        self.ws_close_reason = None
        self._close_sent = False
        self.messages = []  # every text message received
        self.pongs = []
        if rest:
            self._feed(rest)
        return self

    # -- frames -----------------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True, mask=True):
        self.sock.sendall(ws_frame(opcode, payload, fin, mask))

    def send(self, data):
        if data == '</stream:stream>':  # hearth.Client's close
            data = FRAMING_CLOSE
        if isinstance(data, str):
            data = with_client_ns(data)
            data = data.encode('utf-8')
        self.send_frame(0x1, data)

    def send_close(self, code=1000):
        self._close_sent = True
        self.send_frame(0x8, struct.pack('!H', code))

    def _feed(self, data):
        self._wsbuf += data
        buf = self._wsbuf
        while len(buf) >= 2:
            op, ln, i = buf[0] & 0x0f, buf[1] & 0x7f, 2
            fin = buf[0] & 0x80
            if buf[1] & 0x80:
                raise AssertionError('the server masked a frame (RFC 6455 §5.1 forbids it)')
            if ln == 126:
                if len(buf) < 4:
                    return
                ln, i = struct.unpack('!H', bytes(buf[2:4]))[0], 4
            elif ln == 127:
                if len(buf) < 10:
                    return
                ln, i = struct.unpack('!Q', bytes(buf[2:10]))[0], 10
            if len(buf) < i + ln:
                return
            payload = bytes(buf[i:i + ln])
            del buf[:i + ln]
            if op == 0x0:
                if self._frag is None:
                    raise AssertionError('continuation frame without a start')
                self._frag[1].extend(payload)
                if fin:
                    self._message(self._frag[0], bytes(self._frag[1]))
                    self._frag = None
            elif op in (0x1, 0x2):
                if fin:
                    self._message(op, payload)
                else:
                    self._frag = (op, bytearray(payload))
            elif op == 0x8:
                self.ws_close_code = struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else None
                self.ws_close_reason = payload[2:].decode('utf-8', 'replace')
                if not self._close_sent:
                    try:
                        self.send_close(1000)
                    except OSError:
                        pass
            elif op == 0x9:
                try:
                    self.send_frame(0xA, payload)
                except OSError:
                    pass
            elif op == 0xA:
                self.pongs.append(payload)

    def _message(self, op, payload):
        if op == 0x2:
            raise AssertionError('the server sent a binary frame (RFC 7395 §3.2: text only)')
        text = payload.decode('utf-8')
        self.messages.append(text)
        self.raw += payload
        try:
            elem = ET.fromstring(text)
        except ET.ParseError as e:
            self.events.append(('parse-error', e))
            return
        if elem.tag == q(NS_FRAMING, 'open'):
            self.events.append(('header', elem))
        elif elem.tag == q(NS_FRAMING, 'close'):
            self.events.append(('close', elem))
        else:
            self.events.append(('stanza', elem))

    # -- the stream -------------------------------------------------------------

    def recv_header(self, timeout=5):
        kind, elem = self.next_event(timeout)
        if kind != 'header':
            raise AssertionError('expected <open/>, got %s %s' % (kind, to_str(elem) if kind == 'stanza' else elem))
        self.header = elem
        return elem

    def open_stream(self, to=DOMAIN, **kw):
        self.send(framing_open(to))
        header = self.recv_header()
        features = self.recv_stanza()
        if features.tag != q(NS_STREAM, 'features'):
            raise AssertionError('expected stream features, got %s' % to_str(features))
        self.features = features
        return header, features

    def close_stream(self):
        self.send(FRAMING_CLOSE)

    def login(self, user, password, resource=None, mech='SCRAM-SHA-256', bind=True, **kw):
        self.connect()
        self.open_stream()
        if mech == 'PLAIN':
            self.auth_plain(user, password)
        else:
            self.auth_scram(user, password, mech)
        self.open_stream()  # RFC 7395 §3.5: a new <open/> after SASL, on the same socket
        if bind:
            return self.bind(resource)
        return None


class BoshMixin:
    """hearth.Client's transport replaced by BOSH: what is sent goes in the body of the next
    request (at most 'requests' of them outstanding, one always held for the server to answer
    with); answers are taken in rid order, each child one stanza."""

    bosh_secure = True
    bosh_wait = 20
    bosh_hold = 1
    bosh_path = '/http-bind'

    def connect(self, port=None, direct_tls=False, timeout=5):
        self.sid = None
        self.rid = random.randint(1000, 1 << 40)
        self.requests = 2
        self.terminated = False
        self.created = None   # the session creation answer (its <body/>)
        self.answers = []     # every answer, in rid order: (rid, status, body bytes)
        self._lock = threading.Lock()
        self._outbox = []
        self._restart = False
        self._outstanding = 0
        self._results = queue.Queue()
        self._ready = {}
        self._next_release = None
        self._pool = []
        self._header_due = 0
        self._stopped = False
        self.tls = self.bosh_secure
        return self

    # -- requests ---------------------------------------------------------------

    def body_xml(self, rid, payload='', **attrs):
        a = ["xmlns='%s'" % NS_HTTPBIND, "rid='%d'" % rid]
        if self.sid:
            a.append("sid='%s'" % self.sid)
        for k, v in attrs.items():
            a.append("%s='%s'" % (k.replace('__', ':'), v))
        if payload:
            return '<body %s>%s</body>' % (' '.join(a), payload)
        return '<body %s/>' % ' '.join(a)

    def _take_rid(self):
        rid = self.rid
        self.rid += 1
        if self._next_release is None:
            self._next_release = rid
        return rid

    def _conn(self):
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return http_connection(self.server, self.bosh_secure, timeout=self.bosh_wait + 15)

    def _worker(self, rid, body):
        conn = None
        try:
            conn = self._conn()
            conn.request('POST', self.bosh_path, body=body.encode('utf-8'),
                         headers={'Content-Type': 'text/xml; charset=utf-8'})
            r = conn.getresponse()
            data = r.read()
            result = (rid, r.status, data)
            if r.will_close:
                conn.close()
            else:
                with self._lock:
                    self._pool.append(conn)
        except Exception as e:  # delivered to the reader as the session's end
            if conn is not None:
                conn.close()
            result = (rid, None, repr(e).encode())
        self._results.put(result)
        with self._lock:
            self._outstanding -= 1
            self._flush_locked()

    def _start_locked(self, payload='', **attrs):
        rid = self._take_rid()
        body = self.body_xml(rid, payload, **attrs)
        self._outstanding += 1
        threading.Thread(target=self._worker, args=(rid, body), daemon=True).start()

    def _flush_locked(self):
        """Sends what waits, and keeps one request held when nothing does."""
        while not self._stopped and not self.terminated and self.sid and self._outstanding < self.requests:
            if self._restart:
                self._restart = False
                self._start_locked(**{'xmpp__restart': 'true', 'xmlns:xmpp': NS_XBOSH})
            elif self._outbox:
                payload = ''.join(self._outbox)
                self._outbox = []
                self._start_locked(payload)
            elif self._outstanding == 0:
                self._start_locked()
            else:
                break

    def send(self, data):
        if isinstance(data, bytes):
            data = data.decode('utf-8')
        if data == '</stream:stream>':
            return self.terminate()
        with self._lock:
            self._outbox.append(data)
            self._flush_locked()

    def terminate(self, payload=''):
        with self._lock:
            rest = ''.join(self._outbox) + payload
            self._outbox = []
            if not self.terminated and self.sid:
                self._start_locked(rest, type='terminate')
                self._stopped = True

    # -- answers ----------------------------------------------------------------

    def _recv_some(self, deadline):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            rid, status, data = self._results.get(timeout=remaining)
        except queue.Empty:
            return False
        self._ready[rid] = (status, data)
        while self._next_release in self._ready:
            r = self._next_release
            status, data = self._ready.pop(r)
            self._next_release += 1
            self.answers.append((r, status, data))
            self._answer(r, status, data)
        return True

    def _answer(self, rid, status, data):
        self.raw += data
        if status != 200:
            self._end(('http-error', (status, data)))
            return
        try:
            body = ET.fromstring(data)
        except ET.ParseError as e:
            self._end(('parse-error', e))
            return
        if body.tag != q(NS_HTTPBIND, 'body'):
            self._end(('parse-error', 'answer is not a <body/>: %r' % data[:200]))
            return
        for child in list(body):
            if child.tag == q(NS_STREAM, 'features') and self._header_due:
                self._header_due -= 1
                self.events.append(('header', body))
            self.events.append(('stanza', child))
        if body.get('type') == 'terminate':
            self.terminate_condition = body.get('condition')
            self._end(('close', body))

    def _end(self, event):
        with self._lock:
            self.terminated = True
        self.events.append(event)
        self.events.append(('eof', None))
        self.eof = True

    # -- the stream -------------------------------------------------------------

    def create(self, to=DOMAIN, wait=None, hold=None, **attrs):
        """The session creation request, answered at once; returns its <body/>."""
        rid = self._take_rid()
        body = self.body_xml(rid, to=to, wait=wait or self.bosh_wait,
                             hold=self.bosh_hold if hold is None else hold, ver='1.11',
                             **{'xmpp__version': '1.0', 'xmlns:xmpp': NS_XBOSH}, **attrs)
        status, _, data = http_request(self.server, 'POST', self.bosh_path, body.encode(),
                                       {'Content-Type': 'text/xml; charset=utf-8'},
                                       secure=self.bosh_secure)
        self._header_due += 1
        self._ready[rid] = (status, data)
        self._recv_release()
        if status == 200 and not self.eof:
            self.created = ET.fromstring(data)
            self.sid = self.created.get('sid')
            self.requests = int(self.created.get('requests', '2'))
            with self._lock:
                self._flush_locked()
        return self.created

    def _recv_release(self):
        while self._next_release in self._ready:
            r = self._next_release
            status, data = self._ready.pop(r)
            self._next_release += 1
            self.answers.append((r, status, data))
            self._answer(r, status, data)

    def recv_header(self, timeout=5):
        kind, elem = self.next_event(timeout)
        if kind != 'header':
            raise AssertionError('expected the session or restart answer, got %s %s'
                                 % (kind, to_str(elem) if kind == 'stanza' else elem))
        self.header = elem
        return elem

    def open_stream(self, to=DOMAIN, **kw):
        if self.sid is None:
            self.create(to=to)
        else:
            with self._lock:
                self._header_due += 1
                self._restart = True
                self._flush_locked()
        header = self.recv_header()
        features = self.recv_stanza()
        if features.tag != q(NS_STREAM, 'features'):
            raise AssertionError('expected stream features, got %s' % to_str(features))
        self.features = features
        return header, features

    def close_stream(self):
        self.terminate()

    def close(self):
        with self._lock if hasattr(self, '_lock') else _nolock():
            self._stopped = True
            pool, self._pool = getattr(self, '_pool', []), []
        for c in pool:
            c.close()

    def login(self, user, password, resource=None, mech='SCRAM-SHA-256', bind=True, **kw):
        self.connect()
        self.open_stream()
        if mech == 'PLAIN':
            self.auth_plain(user, password)
        else:
            self.auth_scram(user, password, mech)
        self.open_stream()  # XEP-0206 §5: a restart request
        if bind:
            return self.bind(resource)
        return None


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


_classes = {}


def _mixed(mixin, cls):
    key = (mixin, cls)
    if key not in _classes:
        _classes[key] = type(mixin.__name__.replace('Mixin', '') + cls.__name__, (mixin, cls), {})
    return _classes[key]


def ws_client(cls, server, secure=True, protocol='xmpp', origin=None, path='/xmpp-websocket',
              **kw):
    c = _mixed(WebSocketMixin, cls)(server, **kw)
    c.ws_secure, c.ws_protocol, c.ws_origin, c.ws_path = secure, protocol, origin, path
    return c


def bosh_client(cls, server, secure=True, wait=20, hold=1, **kw):
    c = _mixed(BoshMixin, cls)(server, **kw)
    c.bosh_secure, c.bosh_wait, c.bosh_hold = secure, wait, hold
    c.connect()
    return c
