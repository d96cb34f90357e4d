"""Converse.js served by hearthd at /chat/, in Debian's chromium (headless, driven by
playwright-core through tests/web/converse_chat.mjs): alice logs in over WebSocket and bob over
BOSH through Converse's login form, each in a browser context of its own; each sees the other
online (they were made mutual contacts over TCP first); a message goes each way and appears in
the other's chat window. The page loads nothing from outside the server's origin, opens only
the transport it was told to, and logs no console or page error at all: Converse's OMEMO,
reactions and emoji plugins talk to the account's PEP service (XEP-0163) at login, and each
page's OMEMO device list and bundle are found stored afterwards. Screenshots are left in
build/test-artefacts/browser-converse/.

Skipped (exit 77) only when node or chromium is not installed at all."""

import shutil
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'web'))
sys.path.insert(0, str(HERE.parent / 'integration'))

import webrun  # noqa: E402
from hearth import main, wait_for  # noqa: E402
from imlib import IMTestCase, make_state  # noqa: E402

OMEMO_DEVICELIST = 'eu.siacs.conversations.axolotl.devicelist'
OMEMO_BUNDLES = 'eu.siacs.conversations.axolotl.bundles'
STEP_S = 20   # deadline of each browser step
RUN_S = 180   # deadline of the whole browser run

class ConverseTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder'}

    def setUp(self):
        self.chromium = webrun.chromium_binary()
        webrun.node_binary()
        webrun.require_packages('playwright-core', 'converse.js')
        chat = Path(webrun.WEB_ROOT) / 'chat'
        for f in ('index.html', 'hearth-chat.js', 'dist/converse.min.js', 'dist/converse.min.css'):
            if not (chat / f).is_file():
                self.fail('%s is missing: the build lays out /chat/ (CMake target web_chat, '
                          'scripts/build-web.sh)' % (chat / f))

    def test_websocket_and_bosh_chat(self):
        s = self.start_server(**webrun.http_settings(web_root=True))
        port = webrun.require_http(s, 'http')['http']

        # Mutual contacts, set up over TCP; both go offline before the browser logs them in.
        a = self.connect(s, 'alice', resource='setup')
        b = self.connect(s, 'bob', resource='setup')
        make_state(self, a, b, 'both')
        a.logout()
        b.logout()

        artefacts = webrun.ARTEFACTS / 'browser-converse'
        shutil.rmtree(artefacts, ignore_errors=True)
        messages = ['Hello Bob, alice over WebSocket here — ünïcödé <b>not bold</b> & more',
                    'Hi Alice, bob over BOSH answering — 你好']
        config = {
            'base': 'http://127.0.0.1:%d' % port,
            'path': '/chat/',
            'chromium': self.chromium,
            'artefacts': str(artefacts),
            'users': [
                {'label': 'alice', 'jid': 'alice@localhost', 'password': self.users['alice'],
                 'transport': 'websocket'},
                {'label': 'bob', 'jid': 'bob@localhost', 'password': self.users['bob'], 'transport': 'bosh'},
            ],
            'messages': messages,
            'step_ms': STEP_S * 1000,
            'total_ms': (RUN_S - 10) * 1000,
        }
        with webrun.NodeRun('converse_chat.mjs', config) as run:
            result = run.wait(RUN_S)
            if not result['ok']:
                sys.stderr.write('converse_chat.mjs stderr:\n%s\n' % run.stderr()[-8000:])
        sys.stdout.write('screenshots: %s\n' % ', '.join(result['screenshots']))
        self.assertTrue(result['ok'], webrun.describe(result))

        self.assertEqual(result['external_requests'], [],
                         'the page tried to load from outside the server (blocked)')
        self.assertEqual(result['page_errors'], [], 'uncaught errors in the page')
        self.assertEqual(result['console_errors'], [], 'console errors')
        self.assertEqual(result['failed_requests'], [], 'requests that failed')

        # Each page used the transport it was told to, and only that one.
        self.assertEqual(result['websockets'], {'alice': ['ws://127.0.0.1:%d/xmpp-websocket' % port],
                                                'bob': []})
        self.assertEqual(result['bosh_requests']['alice'], 0)
        self.assertGreater(result['bosh_requests']['bob'], 0)

        # Both messages in both chat windows, as sent.
        for who in ('alice', 'bob'):
            self.assertEqual(result['chat_texts'][who][-2:], messages,
                             "%s's chat window: %s" % (who, result['chat_texts'][who]))
        for shot in result['screenshots']:
            self.assertTrue(Path(shot).is_file(), shot)

        # OMEMO is on, and works through PEP: each page published its device list and its
        # bundle (XEP-0384), both readable by anyone (publish-options access_model=open).
        def published():
            con = sqlite3.connect('file:%s?mode=ro' % Path(s.data_dir, 'hearth.db'), uri=True, timeout=5)
            try:
                return con.execute("SELECT p.service, p.node, p.config FROM pubsub_nodes p JOIN "
                                   "pubsub_items i ON i.service = p.service AND i.node = p.node").fetchall()
            finally:
                con.close()
        rows = []
        try:  # published in the background after login: long done by now, but wait for it
            wait_for(lambda: len({r[0] for r in published() if r[1] == OMEMO_DEVICELIST}) == 2, STEP_S,
                     'OMEMO device lists')
        finally:
            rows = published()
        for jid in ('alice@localhost', 'bob@localhost'):
            nodes = {node: config for service, node, config in rows if service == jid}
            self.assertIn(OMEMO_DEVICELIST, nodes, '%s published no OMEMO device list: %s' % (jid, rows))
            bundles = [n for n in nodes if n.startswith(OMEMO_BUNDLES + ':')]
            self.assertEqual(len(bundles), 1, '%s: OMEMO bundles %s' % (jid, bundles))
            for node in (OMEMO_DEVICELIST, bundles[0]):
                self.assertIn("<field var='pubsub#access_model'><value>open</value></field>", nodes[node])


if __name__ == '__main__':
    main()
