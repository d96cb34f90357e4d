"""A groupchat bookmark that Converse.js keeps across a reconnect, in Debian's chromium (headless,
driven by playwright-core through tests/web/converse_bookmark.mjs): alice logs in at the server's
/chat/ over WebSocket and joins a room on conference.localhost with the rooms list's "Add
groupchat" form. Converse 14 bookmarks a room when it enters it (autojoin=true; its MUC heading
has no bookmark button any more), and because the account's disco lists
urn:xmpp:bookmarks:1#compat (and pubsub#publish-options) it publishes to the XEP-0402 node
urn:xmpp:bookmarks:1, one item per room. alice logs out with the profile's Log out button and
logs in again in a fresh browser context (no storage shared with the first), and Converse must
fetch the bookmark from the server, list it under Bookmarks and enter the room by itself.
(Without urn:xmpp:bookmarks:1#compat Converse keeps XEP-0048 bookmarks in the storage:bookmarks
PEP node, and the node asserted here stays empty; a server that did not keep the node would
give session two no bookmark to list or join.) Over raw XML, alice's urn:xmpp:bookmarks:1 node holds the room's item. The page logs no
console or page error and nothing fails or leaves the page's origin. Screenshots are left in
build/test-artefacts/browser-converse-bookmark/.

Skipped (exit 77) only when node or chromium is not installed at all."""

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'web'))
sys.path.insert(0, str(HERE.parent / 'integration'))

import webrun  # noqa: E402
from hearth import DOMAIN, main, q, to_str  # noqa: E402
from imlib import IMTestCase  # noqa: E402

NS_PS = 'http://jabber.org/protocol/pubsub'
BOOKMARKS = 'urn:xmpp:bookmarks:1'
ROOM = 'garden@conference.%s' % DOMAIN
NICK = 'Alice'
STEP_S = 20
RUN_S = 200


class ConverseBookmarkTest(IMTestCase):
    users = {'alice': 'wonderland'}

    def setUp(self):
        self.chromium = webrun.chromium_binary()
        webrun.node_binary()
        webrun.require_packages('playwright-core', 'converse.js')
        chat = Path(webrun.WEB_ROOT) / 'chat'
        for f in ('index.html', 'hearth-chat.js', 'dist/converse.min.js'):
            if not (chat / f).is_file():
                self.fail('%s is missing: the build lays out /chat/ (CMake target web_chat)' % (chat / f))

    def test_bookmark_survives_reconnect(self):
        s = self.start_server(**webrun.http_settings(web_root=True))
        port = webrun.require_http(s, 'http')['http']

        artefacts = webrun.ARTEFACTS / 'browser-converse-bookmark'
        shutil.rmtree(artefacts, ignore_errors=True)
        config = {
            'base': 'http://127.0.0.1:%d' % port,
            'path': '/chat/',
            'chromium': self.chromium,
            'artefacts': str(artefacts),
            'user': {'label': 'alice', 'jid': 'alice@%s' % DOMAIN, 'password': self.users['alice'],
                     'transport': 'websocket'},
            'room': ROOM,
            'nick': NICK,
            'step_ms': STEP_S * 1000,
            'total_ms': (RUN_S - 10) * 1000,
        }
        with webrun.NodeRun('converse_bookmark.mjs', config) as run:
            result = run.wait(RUN_S)
            if not result['ok']:
                sys.stderr.write('converse_bookmark.mjs stderr:\n%s\n' % run.stderr()[-8000:])
        self.assertTrue(result['ok'], webrun.describe(result))
        self.assertEqual(result['external_requests'], [], 'requests outside the page origin (blocked)')
        self.assertEqual(result['page_errors'], [], 'uncaught errors in the page')
        self.assertEqual(result['console_errors'], [], 'console errors')
        self.assertEqual(result['failed_requests'], [], 'requests that failed')

        # Converse chose XEP-0402's node (not XEP-0048's storage:bookmarks) and the server took it.
        first = [p for p in result['publishes'] if p['session'] == 1 and 'bookmarks' in p['node']]
        self.assertTrue(first, result['publishes'])
        self.assertEqual({p['node'] for p in first}, {BOOKMARKS}, first)
        self.assertIn('result', [p['answer'] for p in first], first)
        self.assertIn(ROOM, result['listed_first'])
        self.assertIn(ROOM, result['listed_second'])
        self.assertTrue(result['rejoined'], 'session 2 entered the room by autojoin')

        # The server side: the node holds one item, named by the room's JID, with autojoin.
        a = self.connect(s, 'alice', resource='check')
        r = a.iq_ok('get', "<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (NS_PS, BOOKMARKS))
        items = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'items'))
        self.assertIsNotNone(items, to_str(r))
        found = [i for i in items.findall(q(NS_PS, 'item')) if i.get('id') == ROOM]
        self.assertEqual(len(found), 1, to_str(r))
        conf = found[0].find(q(BOOKMARKS, 'conference'))
        self.assertIsNotNone(conf, to_str(r))
        self.assertIn(conf.get('autojoin'), ('true', '1'), to_str(r))
        self.assertEqual(conf.find(q(BOOKMARKS, 'nick')).text, NICK, to_str(r))


if __name__ == '__main__':
    main()
