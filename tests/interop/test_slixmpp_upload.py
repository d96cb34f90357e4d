"""Interop of HTTP File Upload (XEP-0363) with Debian's python3-slixmpp (1.8.x) and its xep_0363
plugin, as a client does it: the service found through the server's disco#items and the
services' disco#info (identity store/file, the feature), max-file-size read from the XEP-0128
form, then the plugin asks for a slot and PUTs the file with aiohttp, sending the slot's
headers; the
link goes to a contact in a message with XEP-0066 out-of-band data, and the contact fetches the
bytes. A file past the limit is refused by the plugin itself (from the form) and by the
service (when asked anyway), with the maximum the service announced.

slixmpp 1.8.3's own discovery (find_upload_service, through xep_0030's get_info_from_domain)
fails on Python 3.11: it hands asyncio.wait coroutines, which 3.11 refuses ("Passing coroutines
is forbidden"). discover() does the same steps with xep_0030's get_items and get_info and gives
the plugin what its discovery would have set; everything after is the plugin's own."""

import asyncio
import io
import os
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

try:
    import aiohttp  # noqa: F401 - xep_0363 PUTs with it
except ImportError:  # pragma: no cover - python3-aiohttp is a build dependency
    aiohttp = None

MAX = 200000


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0066', 'xep_0363')

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self.messages = asyncio.Queue()
        self.add_event_handler('message', lambda m: self.messages.put_nowait(m))

    def setup_session(self):
        self.send_presence()


@__import__('unittest').skipIf(aiohttp is None, 'python3-aiohttp is not installed')
class SlixmppUploadTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw'},
                   'settings': {'http.port': '0', 'upload.max_file_size': str(MAX)},
                   'listeners': ('c2s', 'c2s_direct_tls', 'http')}

    def discover(self, bot):
        """find_upload_service and the form reading of upload_file, step by step."""
        items = self.run_until(bot['xep_0030'].get_items(jid='localhost', timeout=10))
        for jid, _, _ in items['disco_items']['items']:
            info = self.run_until(bot['xep_0030'].get_info(jid=jid, timeout=10))['disco_info']
            if ('store', 'file') in [i[:2] for i in info['identities']] and \
                    'urn:xmpp:http:upload:0' in info['features']:
                bot['xep_0363'].upload_service = jid
                for form in info.iterables:
                    values = form['values']
                    if values['FORM_TYPE'] == ['urn:xmpp:http:upload:0']:
                        bot['xep_0363'].max_file_size = int(values['max-file-size'])
                return jid
        self.fail('no upload service in disco#items: %s' % items)

    def started(self, user, resource):
        b = self.bot(user, resource)
        self.connect(b)
        self.run_until(b.started)
        return b

    def test_upload_and_fetch(self):
        alice = self.started('alice', 'phone')
        bob = self.started('bob', 'laptop')
        data = os.urandom(150000)
        self.assertEqual(self.discover(alice), 'upload.localhost')
        url = self.run_until(alice['xep_0363'].upload_file(
            'holiday photo.jpg', input_file=io.BytesIO(data), content_type='image/jpeg', timeout=10))
        self.assertEqual(alice['xep_0363'].upload_service, 'upload.localhost')
        self.assertEqual(alice['xep_0363'].max_file_size, MAX)
        self.assertTrue(url.startswith('http://localhost:%d/upload/' % self.s.ports['http']), url)
        self.assertTrue(url.endswith('/holiday%20photo.jpg'), url)
        msg = alice.make_message(mto='bob@localhost', mbody=url, mtype='chat')
        msg['oob']['url'] = url
        msg.send()
        got = self.run_until(bob.messages.get())
        self.assertEqual(got['oob']['url'], url)
        self.assertEqual(got['body'], url)

        def fetch():
            with urllib.request.urlopen(url.replace('localhost', '127.0.0.1', 1), timeout=10) as r:
                return r.status, r.headers.get('Content-Type'), r.read()
        status, ctype, body = self.run_until(self.loop.run_in_executor(None, fetch))
        self.assertEqual((status, ctype), (200, 'image/jpeg'))
        self.assertEqual(body, data)

    def test_too_large(self):
        alice = self.started('alice', 'phone')
        up = slixmpp.plugins.xep_0363.http_upload
        self.discover(alice)
        with self.assertRaises(up.FileTooBig):  # from the form in the service's disco#info
            self.run_until(alice['xep_0363'].upload_file(
                'big.bin', input_file=io.BytesIO(b'x' * (MAX + 1)), timeout=10))
        with self.assertRaises(slixmpp.exceptions.IqError) as e:  # the service says it too
            self.run_until(alice['xep_0363'].request_slot('upload.localhost', 'big.bin', MAX + 1, timeout=10))
        iq = e.exception.iq
        self.assertEqual(iq['error']['condition'], 'not-acceptable')
        ns = '{urn:xmpp:http:upload:0}'
        self.assertEqual(iq.xml.find('{jabber:client}error/%sfile-too-large/%smax-file-size' % (ns, ns)).text,
                         str(MAX))


if __name__ == '__main__':
    main()
