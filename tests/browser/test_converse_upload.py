"""A file shared from Converse.js with HTTP File Upload (XEP-0363), in Debian's chromium (headless,
driven by playwright-core through tests/web/converse_upload.mjs): alice logs in at the server's
/chat/ over WebSocket, opens the chat with bob, and sends a file with the toolbar's file button,
which Converse shows only because disco found upload.localhost. Converse asks for a slot, PUTs
the file with the slot's Authorization header to the slot's URL (http://localhost:PORT, another
origin than the page's http://127.0.0.1:PORT, so the browser checks CORS with a preflight
first) and sends the link. bob, logged in over TCP, gets the message with the link as body and
as XEP-0066 out-of-band data, and fetching the link gives the file's bytes. The page logs no
console or page error and nothing fails or leaves the two origins. Screenshots are left in
build/test-artefacts/browser-converse-upload/.

Skipped (exit 77) only when node or chromium is not installed at all."""

import base64
import http.client
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'web'))
sys.path.insert(0, str(HERE.parent / 'integration'))

import webrun  # noqa: E402
from hearth import main, q, to_str  # noqa: E402
from imlib import IMTestCase, is_msg, make_state  # noqa: E402

NS_OOB = 'jabber:x:oob'
STEP_S = 20
RUN_S = 150


class ConverseUploadTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder'}

    def setUp(self):
        self.chromium = webrun.chromium_binary()
        webrun.node_binary()
        webrun.require_packages('playwright-core', 'converse.js')
        chat = Path(webrun.WEB_ROOT) / 'chat'
        for f in ('index.html', 'hearth-chat.js', 'dist/converse.min.js'):
            if not (chat / f).is_file():
                self.fail('%s is missing: the build lays out /chat/ (CMake target web_chat)' % (chat / f))

    def test_file_sent_from_converse(self):
        s = self.start_server(**webrun.http_settings(web_root=True))
        port = webrun.require_http(s, 'http')['http']
        a = self.connect(s, 'alice', resource='setup')
        b = self.connect(s, 'bob', resource='tcp')
        make_state(self, a, b, 'both')
        a.logout()

        data = os.urandom(48 * 1024) + 'ünïcödé'.encode()
        artefacts = webrun.ARTEFACTS / 'browser-converse-upload'
        shutil.rmtree(artefacts, ignore_errors=True)
        config = {
            'base': 'http://127.0.0.1:%d' % port,
            'upload_origin': 'http://localhost:%d' % port,
            'path': '/chat/',
            'chromium': self.chromium,
            'artefacts': str(artefacts),
            'user': {'label': 'alice', 'jid': 'alice@localhost', 'password': self.users['alice'],
                     'transport': 'websocket'},
            'contact': 'bob@localhost',
            'file': {'name': 'holiday notes.bin', 'type': 'application/octet-stream',
                     'base64': base64.b64encode(data).decode()},
            'step_ms': STEP_S * 1000,
            'total_ms': (RUN_S - 10) * 1000,
        }
        with webrun.NodeRun('converse_upload.mjs', config) as run:
            result = run.wait(RUN_S)
            if not result['ok']:
                sys.stderr.write('converse_upload.mjs stderr:\n%s\n' % run.stderr()[-8000:])
        self.assertTrue(result['ok'], webrun.describe(result))
        self.assertEqual(result['external_requests'], [], 'requests outside the two origins (blocked)')
        self.assertEqual(result['page_errors'], [], 'uncaught errors in the page')
        self.assertEqual(result['console_errors'], [], 'console errors')
        self.assertEqual(result['failed_requests'], [], 'requests that failed')

        url = result['link']
        self.assertTrue(url.startswith('http://localhost:%d/upload/' % port), url)
        self.assertTrue(url.endswith('/holiday%20notes.bin'), url)
        self.assertIn({'method': 'PUT', 'url': url, 'status': 201}, result['uploads'])

        # bob gets the link, as the body and as out-of-band data.
        m = b.wait(lambda st: is_msg(st, from_=None) and st.find(q('jabber:client', 'body')) is not None,
                   what='the message with the link')
        self.assertTrue(m.get('from').startswith('alice@localhost/'), to_str(m))
        self.assertEqual(m.find(q('jabber:client', 'body')).text, url)
        self.assertEqual(m.find('%s/%s' % (q(NS_OOB, 'x'), q(NS_OOB, 'url'))).text, url)

        # ... and the link gives the bytes Converse read from the file.
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        self.addCleanup(conn.close)
        conn.request('GET', urllib.parse.urlsplit(url).path)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, data))


if __name__ == '__main__':
    main()
