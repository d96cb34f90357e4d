"""HTTP File Upload (XEP-0363) at upload.<domain>: the service in disco exactly when enabled,
slot requests with their limits and the XEP's errors, then real HTTP PUT, GET and HEAD on the
loopback listener with http.client: the slot's size, type and token enforced, a slot used once,
slots that expire, paths that try to leave the store, the quota (kept across a restart), files
served so that a browser never runs them, files past expiry and an account's files removed."""

import http.client
import os
import socket
import time
import urllib.parse

from hearth import DOMAIN, NS_STANZAS, main, q, to_str, wait_for, xml_escape
from imlib import IQ, IMTestCase, app_error, err

UP = 'upload.' + DOMAIN
NS_UP = 'urn:xmpp:http:upload:0'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_DATA = 'jabber:x:data'
NS_REGISTER = 'jabber:iq:register'
MAX = 100000


class UploadTest(IMTestCase):
    settings = {'http.port': '0', 'upload.max_file_size': str(MAX),
                'upload.quota_per_user': '250000'}

    def start(self, **kw):
        s = self.start_server(listeners=('c2s', 'http'), **kw)
        return s

    # -- XMPP ------------------------------------------------------------------

    def request(self, c, name, size, ctype=None, type_='get'):
        attrs = "filename='%s' size='%s'" % (xml_escape(name), size)
        if ctype is not None:
            attrs += " content-type='%s'" % xml_escape(ctype)
        return c.iq(type_, "<request xmlns='%s' %s/>" % (NS_UP, attrs), to=UP)

    def slot(self, c, name, size, ctype=None):
        r = self.request(c, name, size, ctype)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(r.get('from'), UP)
        s = r.find(q(NS_UP, 'slot'))
        self.assertIsNotNone(s, to_str(r))
        put, get = s.find(q(NS_UP, 'put')), s.find(q(NS_UP, 'get'))
        headers = {h.get('name'): h.text for h in put.findall(q(NS_UP, 'header'))}
        self.assertEqual(sorted(headers), ['Authorization'])
        self.assertEqual(put.get('url'), get.get('url'))
        return put.get('url'), headers

    def assert_error(self, r, type_, cond):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r), (type_, cond), to_str(r))

    # -- HTTP ------------------------------------------------------------------

    def http(self, s, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection('127.0.0.1', s.ports['http'], timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def path_of(self, s, url, restarted=False):
        u = urllib.parse.urlsplit(url)
        if not restarted:  # the listener's port is ephemeral: another after a restart
            self.assertEqual((u.scheme, u.hostname, u.port), ('http', DOMAIN, s.ports['http']), url)
        return u.path

    def put(self, s, url, body, headers, ctype=None):
        h = dict(headers)
        if ctype is not None:
            h['Content-Type'] = ctype
        return self.http(s, 'PUT', self.path_of(s, url), body, h)

    def stored(self, s):
        d = os.path.join(s.data_dir, 'upload')
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def upload(self, s, c, name, data, ctype='application/octet-stream'):
        url, headers = self.slot(c, name, len(data), ctype)
        st, body, _ = self.put(s, url, data, headers, ctype)
        self.assertEqual(st, 201, body)
        return url

    # -- disco -----------------------------------------------------------------

    def test_disco(self):
        s = self.start()
        a = self.connect(s, 'alice')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN)
        items = [(i.get('jid'), i.get('name')) for i in r.find(q(NS_DISCO_ITEMS, 'query'))]
        self.assertIn((UP, 'HTTP File Upload'), items, to_str(r))
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=UP)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        qy = r.find(q(NS_DISCO_INFO, 'query'))
        ids = [(i.get('category'), i.get('type')) for i in qy.findall(q(NS_DISCO_INFO, 'identity'))]
        self.assertEqual(ids, [('store', 'file')])
        feats = [f.get('var') for f in qy.findall(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_UP, feats)
        x = qy.find(q(NS_DATA, 'x'))
        fields = {f.get('var'): f.find(q(NS_DATA, 'value')).text for f in x.findall(q(NS_DATA, 'field'))}
        self.assertEqual(fields, {'FORM_TYPE': NS_UP, 'max-file-size': str(MAX)})
        self.assertEqual(x.get('type'), 'result')

    def test_disabled(self):
        s = self.start(**{'upload.enabled': 'false'})
        a = self.connect(s, 'alice')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN)
        items = [i.get('jid') for i in r.find(q(NS_DISCO_ITEMS, 'query'))]
        self.assertNotIn(UP, items, to_str(r))
        self.assertIn('conference.' + DOMAIN, items)
        # The service does not exist: its domain is no domain of this server.
        r = self.request(a, 'a.txt', 10)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r)[1], 'remote-server-not-found', to_str(r))
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=UP)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        st, _, _ = self.http(s, 'PUT', '/upload/' + 'a' * 32 + '/a.txt', b'x' * 10,
                             {'Content-Type': 'text/plain'})
        self.assertEqual(st, 404)
        self.assertEqual(self.stored(s), [])

    # -- slots and their errors -------------------------------------------------

    def test_too_large(self):
        s = self.start()
        a = self.connect(s, 'alice')
        r = self.request(a, 'big.bin', MAX + 1, 'application/octet-stream')
        self.assert_error(r, 'modify', 'not-acceptable')
        big = app_error(r, NS_UP)
        self.assertEqual(big.tag, q(NS_UP, 'file-too-large'), to_str(r))
        self.assertEqual(big.find(q(NS_UP, 'max-file-size')).text, str(MAX))
        # The request comes back with the error (XEP-0363 5, Example 6).
        req = r.find(q(NS_UP, 'request'))
        self.assertIsNotNone(req, to_str(r))
        self.assertEqual(req.get('size'), str(MAX + 1))
        # Exactly the maximum is fine.
        self.slot(a, 'big.bin', MAX)

    def test_bad_requests(self):
        s = self.start()
        a = self.connect(s, 'alice')
        for name, size, ctype in [('', 10, None), ('a/b.txt', 10, None), ('..', 10, None),
                                  ('a\\b', 10, None), ('x' * 256, 10, None),
                                  ('a.txt', '', None), ('a.txt', '-1', None), ('a.txt', '1e3', None),
                                  ('a.txt', '12345678901234567890', None),
                                  ('a.txt', 10, 'text'), ('a.txt', 10, 'text/plain\u00e9'),
                                  ('a.txt', 10, 'a/' + 'b' * 200)]:
            r = self.request(a, name, size, ctype)
            self.assert_error(r, 'modify', 'bad-request')
        r = a.iq('get', "<request xmlns='%s' size='10'/>" % NS_UP, to=UP)
        self.assert_error(r, 'modify', 'bad-request')
        r = a.iq('get', "<request xmlns='%s' filename='a.txt'/>" % NS_UP, to=UP)
        self.assert_error(r, 'modify', 'bad-request')
        r = self.request(a, 'a.txt', 10, type_='set')
        self.assert_error(r, 'modify', 'bad-request')
        r = a.iq('get', "<query xmlns='urn:example:nothing'/>", to=UP)
        self.assert_error(r, 'cancel', 'service-unavailable')
        r = self.request(a, 'a.txt', 10)
        self.assertEqual(r.get('type'), 'result', to_str(r))  # the service still answers
        self.assertEqual(self.stored(s), [])

    def test_allowed_types(self):
        s = self.start(upload__allowed_types='image/*, application/pdf')
        a = self.connect(s, 'alice')
        for ctype in ('image/png', 'IMAGE/JPEG', 'application/pdf', 'image/svg+xml; charset=x'):
            self.slot(a, 'a.bin', 10, ctype)
        for ctype in ('text/html', 'application/pdfx', 'imagex/png', None):
            r = self.request(a, 'a.bin', 10, ctype)
            self.assert_error(r, 'modify', 'not-acceptable')
        self.assertEqual(self.stored(s), [])

    # -- PUT, GET, HEAD ----------------------------------------------------------

    def test_put_get_head(self):
        s = self.start()
        a = self.connect(s, 'alice')
        data = bytes(range(256)) * 300  # 76800 bytes, every byte value
        name = 'my photo \u00e9t\u00e9 #1.png'
        url, headers = self.slot(a, name, len(data), 'image/png')
        self.assertTrue(url.endswith('/' + urllib.parse.quote(name, safe='')), url)
        st, body, h = self.put(s, url, data, headers, 'image/png')
        self.assertEqual(st, 201, body)
        path = self.path_of(s, url)
        # Anyone with the URL gets the bytes, without logging in.
        st, body, h = self.http(s, 'GET', path)
        self.assertEqual(st, 200)
        self.assertEqual(body, data)
        self.assertEqual(h['content-type'], 'image/png')
        self.assertEqual(h['content-length'], str(len(data)))
        self.assertEqual(h['x-content-type-options'], 'nosniff')
        self.assertIn("default-src 'none'", h['content-security-policy'])
        self.assertIn('sandbox', h['content-security-policy'])
        self.assertTrue(h['content-disposition'].startswith('inline; filename="my photo __t__ #1.png"'),
                        h['content-disposition'])
        self.assertIn("filename*=UTF-8''my%20photo%20%C3%A9t%C3%A9%20#1.png", h['content-disposition'])
        self.assertEqual(h['access-control-allow-origin'], '*')
        st, body, h = self.http(s, 'HEAD', path)
        self.assertEqual((st, body), (200, b''))
        self.assertEqual(h['content-length'], str(len(data)))
        self.assertEqual(h['content-type'], 'image/png')
        # On disk: the bytes and the record, named by the id alone.
        sid = path.split('/')[2]
        self.assertEqual(self.stored(s), [sid, sid + '.meta'])
        with open(os.path.join(s.data_dir, 'upload', sid), 'rb') as f:
            self.assertEqual(f.read(), data)
        # Several files on one keep-alive connection, and a 5 MiB one: bodies go to disk and
        # come back in pieces, past the 1 MiB a buffered HTTP body may have.
        s2 = self.start(**{'upload.max_file_size': str(8 << 20), 'upload.quota_per_user': '0'})
        b = self.connect(s2, 'bob')
        big = os.urandom(5 << 20)
        url = self.upload(s2, b, 'big.bin', big)
        conn = http.client.HTTPConnection('127.0.0.1', s2.ports['http'], timeout=20)
        self.addCleanup(conn.close)
        for _ in range(2):
            conn.request('GET', self.path_of(s2, url))
            r = conn.getresponse()
            self.assertEqual((r.status, r.read() == big), (200, True))

    def test_same_name_two_slots_and_quotes_in_the_name(self):
        s = self.start()
        a = self.connect(s, 'alice')
        # Two slots for one name: two different random ids (32 hex digits), two files.
        u1, _ = self.slot(a, 'same.txt', 3, 'text/plain')
        u2, _ = self.slot(a, 'same.txt', 3, 'text/plain')
        ids = [self.path_of(s, u).split('/')[2] for u in (u1, u2)]
        for i in ids:
            self.assertRegex(i, r'^[0-9a-f]{32}$')
        self.assertNotEqual(ids[0], ids[1])
        # A '"' in the name cannot end the header's quoted filename: it comes back as '_'.
        url = self.upload(s, a, 'say "hi".txt', b'hi!', 'text/plain')
        st, body, h = self.http(s, 'GET', self.path_of(s, url))
        self.assertEqual((st, body), (200, b'hi!'))
        cd = h['content-disposition']
        self.assertTrue(cd.startswith('inline; filename="say _hi_.txt"'), cd)
        self.assertIn("filename*=UTF-8''say%20%22hi%22.txt", cd)

    def test_active_content_is_a_download(self):
        s = self.start()
        a = self.connect(s, 'alice')
        page = b"<html><script>alert(document.cookie)</script></html>"
        for ctype in ('text/html', 'image/svg+xml', 'application/xhtml+xml', 'text/javascript'):
            url = self.upload(s, a, 'page.html', page, ctype)
            st, body, h = self.http(s, 'GET', self.path_of(s, url))
            self.assertEqual((st, body), (200, page))
            self.assertEqual(h['content-type'], 'application/octet-stream', ctype)
            self.assertTrue(h['content-disposition'].startswith('attachment;'), h)
            self.assertEqual(h['x-content-type-options'], 'nosniff')
            self.assertIn('sandbox', h['content-security-policy'])

    def test_wrong_size_type_or_token(self):
        s = self.start()
        a = self.connect(s, 'alice')
        data = b'0123456789' * 10
        url, headers = self.slot(a, 'a.txt', len(data), 'text/plain')
        for body, hdrs, ctype, want in [
                (data[:-1], headers, 'text/plain', 400),
                (data + b'!', headers, 'text/plain', 413),
                (data, headers, 'text/html', 415),
                (data, headers, None, 415),
                (data, {}, 'text/plain', 403),
                (data, {'Authorization': 'Bearer ' + '0' * 64}, 'text/plain', 403),
                (data, {'Authorization': headers['Authorization'][7:]}, 'text/plain', 403)]:
            st, resp, _ = self.put(s, url, body, hdrs, ctype)
            self.assertEqual(st, want, (len(body), hdrs, ctype, resp))
            self.assertEqual(self.stored(s), [])
            self.assertEqual(self.http(s, 'GET', self.path_of(s, url))[0], 404)
        # Another slot's token does not open this one.
        url2, headers2 = self.slot(a, 'a.txt', len(data), 'text/plain')
        self.assertEqual(self.put(s, url, data, headers2, 'text/plain')[0], 403)
        # Larger than any slot: refused before its body.
        st, _, _ = self.http(s, 'PUT', self.path_of(s, url), b'x' * (MAX + 1),
                             dict(headers, **{'Content-Type': 'text/plain'}))
        self.assertEqual(st, 413)
        # The slot is still there for the right PUT.
        self.assertEqual(self.put(s, url, data, headers, 'text/plain')[0], 201)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url))[1], data)

    def test_slot_used_once(self):
        s = self.start()
        a = self.connect(s, 'alice')
        data = b'first version'
        url, headers = self.slot(a, 'note.txt', len(data), 'text/plain')
        self.assertEqual(self.put(s, url, data, headers, 'text/plain')[0], 201)
        before = {n: open(os.path.join(s.data_dir, 'upload', n), 'rb').read() for n in self.stored(s)}
        st, _, _ = self.put(s, url, b'other version', headers, 'text/plain')
        self.assertEqual(st, 409)
        after = {n: open(os.path.join(s.data_dir, 'upload', n), 'rb').read() for n in self.stored(s)}
        self.assertEqual(before, after)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url))[1], data)

    def raw_put(self, s, url, headers, ctype, length, first):
        """A PUT whose headers and first bytes are sent, the rest left to the caller."""
        sock = socket.create_connection(('127.0.0.1', s.ports['http']), timeout=10)
        self.addCleanup(sock.close)
        head = 'PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: %s\r\n' % (
            self.path_of(s, url), DOMAIN, length, ctype)
        head += ''.join('%s: %s\r\n' % kv for kv in headers.items())
        sock.sendall(head.encode() + b'\r\n' + first)
        return sock

    def test_concurrent_and_interrupted_puts(self):
        s = self.start()
        a = self.connect(s, 'alice')
        data = os.urandom(60000)
        url, headers = self.slot(a, 'c.bin', len(data), 'application/octet-stream')
        # One PUT under way: a second one for the slot is refused, the first goes on.
        first = self.raw_put(s, url, headers, 'application/octet-stream', len(data), data[:1000])
        wait_for(lambda: any(n.endswith('.part') for n in self.stored(s)), 5, 'the upload begun')
        st, _, _ = self.put(s, url, b'y' * len(data), headers, 'application/octet-stream')
        self.assertEqual(st, 409)
        first.sendall(data[1000:])
        resp = first.recv(4096)
        self.assertTrue(resp.startswith(b'HTTP/1.1 201 '), resp)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url))[1], data)
        # A PUT cut off halfway stores nothing, and the slot may be used again while it lasts.
        url2, headers2 = self.slot(a, 'd.bin', len(data), 'application/octet-stream')
        cut = self.raw_put(s, url2, headers2, 'application/octet-stream', len(data), data[:30000])
        wait_for(lambda: any(n.endswith('.part') for n in self.stored(s)), 5, 'the second upload begun')
        cut.close()
        wait_for(lambda: not any(n.endswith('.part') for n in self.stored(s)), 5, 'the partial file removed')
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url2))[0], 404)
        self.assertEqual(self.put(s, url2, data, headers2, 'application/octet-stream')[0], 201)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url2))[1], data)

    def test_expired_slot(self):
        s = self.start(**{'upload.slot_ttl': '1'})
        a = self.connect(s, 'alice')
        url, headers = self.slot(a, 'late.txt', 4, 'text/plain')
        time.sleep(2.2)  # the slot's time is the clock's: nothing else to wait for
        st, _, _ = self.put(s, url, b'late', headers, 'text/plain')
        self.assertEqual(st, 410)
        self.assertEqual(self.stored(s), [])
        self.assertEqual(self.http(s, 'GET', self.path_of(s, url))[0], 404)

    def test_paths_stay_in_the_store(self):
        s = self.start()
        a = self.connect(s, 'alice')
        url = self.upload(s, a, 'a.txt', b'hello', 'text/plain')
        path = self.path_of(s, url)
        sid = path.split('/')[2]
        for p in ['/upload/', '/upload', '/upload/../hearth.db', '/upload/%2e%2e/hearth.db',
                  '/upload/' + sid, '/upload/' + sid + '/', '/upload/' + sid + '/b.txt',
                  '/upload/' + sid + '/../../hearth.db', '/upload/' + sid + '/a.txt/..',
                  '/upload/' + sid + '.meta/a.txt', '/upload/' + sid.upper() + '/a.txt',
                  '/upload/' + sid + '/a.txt%00', '/upload/../cert.pem',
                  '/upload/' + sid[:-1] + '/a.txt', '/upload/./' + sid + '/a.txt']:
            st, body, _ = self.http(s, 'GET', p)
            self.assertEqual(st, 404, (p, body))
            self.assertNotIn(b'hello', body)
        data = b'evil'
        url2, headers = self.slot(a, 'x.txt', len(data), 'text/plain')
        sid2 = self.path_of(s, url2).split('/')[2]
        for p in ['/upload/../evil', '/upload/' + sid2 + '/../../evil', '/upload/' + sid2 + '/y.txt']:
            st, _, _ = self.http(s, 'PUT', p, data, dict(headers, **{'Content-Type': 'text/plain'}))
            self.assertEqual(st, 404, p)
        self.assertFalse(os.path.exists(os.path.join(s.data_dir, 'evil')))
        self.assertEqual(self.stored(s), [sid, sid + '.meta'])

    def test_preflight(self):
        s = self.start()
        st, _, h = self.http(s, 'OPTIONS', '/upload/' + 'a' * 32 + '/a.png',
                             headers={'Origin': 'https://chat.example', 'Access-Control-Request-Method': 'PUT',
                                      'Access-Control-Request-Headers': 'authorization,content-type'})
        self.assertEqual(st, 204)
        self.assertEqual(h['access-control-allow-origin'], '*')
        self.assertIn('PUT', h['access-control-allow-methods'])
        self.assertIn('Authorization', h['access-control-allow-headers'])
        self.assertIn('Content-Type', h['access-control-allow-headers'])

    # -- quota, expiry, accounts that go -------------------------------------------

    def test_quota_survives_restart(self):
        s = self.start()
        a = self.connect(s, 'alice')
        self.upload(s, a, 'one.bin', b'1' * MAX)
        url, headers = self.slot(a, 'two.bin', MAX)  # open slots count too
        r = self.request(a, 'three.bin', MAX)
        self.assert_error(r, 'wait', 'resource-constraint')
        self.assertEqual(len(self.slot(a, 'small.bin', 50000)), 2)  # what is left fits
        b = self.connect(s, 'bob')  # the quota is each user's
        self.slot(b, 'b.bin', MAX)
        self.assertEqual(self.put(s, url, b'2' * MAX, headers, 'application/octet-stream')[0], 201)
        a.close()
        s.stop()
        s.start()
        a = self.connect(s, 'alice')
        r = self.request(a, 'three.bin', MAX)
        self.assert_error(r, 'wait', 'resource-constraint')
        self.slot(a, 'fits.bin', 50000)  # the unused small slot did not survive the restart
        self.assertEqual(len([n for n in self.stored(s) if not n.endswith('.meta')]), 2)

    def test_expired_files_and_leftovers_go_at_start(self):
        s = self.start(**{'upload.expire_days': '1'})
        a = self.connect(s, 'alice')
        old = self.upload(s, a, 'old.txt', b'old', 'text/plain')
        new = self.upload(s, a, 'new.txt', b'new', 'text/plain')
        a.close()
        s.stop()
        d = os.path.join(s.data_dir, 'upload')
        oid = self.path_of(s, old, True).split('/')[2]
        meta = os.path.join(d, oid + '.meta')
        lines = [('created %d' % (time.time() - 2 * 86400)) if l.startswith('created ') else l
                 for l in open(meta).read().splitlines()]
        with open(meta, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        for junk in ('f' * 32 + '.part', 'e' * 32, 'd' * 32 + '.meta'):
            with open(os.path.join(d, junk), 'w') as f:
                f.write('junk')
        s.start()
        nid = self.path_of(s, new, True).split('/')[2]
        self.assertEqual(self.stored(s), [nid, nid + '.meta'])
        self.assertEqual(self.http(s, 'GET', self.path_of(s, old, True))[0], 404)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, new, True))[1], b'new')

    def test_account_removal_removes_files(self):
        s = self.start()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        mine = self.upload(s, a, 'mine.txt', b'mine', 'text/plain')
        self.slot(a, 'pending.txt', 10)
        theirs = self.upload(s, b, 'theirs.txt', b'theirs', 'text/plain')
        r = a.iq('set', "<query xmlns='%s'><remove/></query>" % NS_REGISTER)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        bid = self.path_of(s, theirs).split('/')[2]
        wait_for(lambda: self.stored(s) == [bid, bid + '.meta'], 5, "alice's files removed")
        self.assertEqual(self.http(s, 'GET', self.path_of(s, mine))[0], 404)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, theirs))[1], b'theirs')

    def test_account_removed_offline_loses_files_at_start(self):
        s = self.start()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        mine = self.upload(s, a, 'mine.txt', b'mine', 'text/plain')
        theirs = self.upload(s, b, 'theirs.txt', b'theirs', 'text/plain')
        a.close()
        b.close()
        s.stop()
        r = s.ctl('deluser', 'alice@' + DOMAIN)  # no server running: no hook hears it
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        bid = self.path_of(s, theirs, True).split('/')[2]
        self.assertEqual(self.stored(s), [bid, bid + '.meta'])
        self.assertEqual(self.http(s, 'GET', self.path_of(s, mine, True))[0], 404)
        self.assertEqual(self.http(s, 'GET', self.path_of(s, theirs, True))[1], b'theirs')


if __name__ == '__main__':
    main()
