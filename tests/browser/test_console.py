"""The admin console in Debian's chromium (playwright-core, tests/web/console_admin.mjs) on a
fresh data directory: the setup page with the token from <data-dir>/setup.token, the first
administrator, the login, a user created from the users page who then logs in over XMPP and
shows on the sessions page (address, TLS version, SASL mechanism), kicked from there (the XMPP
side sees its stream end), a room created, registration opened from the settings page and
working at once (in-band registration). On every page: no console error, no page error, no
request leaving the server, and no sideways scrolling at 390x844. Screenshots of every page go
to build/test-artefacts/browser-console/.

Skipped (exit 77) only when node or chromium is not installed at all."""

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'web'))
sys.path.insert(0, str(HERE.parent / 'integration'))

import webrun  # noqa: E402
from hearth import Client, main  # noqa: E402
from imlib import IMTestCase  # noqa: E402

STEP_S = 20
RUN_S = 120
ADMIN = {'user': 'root', 'password': 'root console pw'}
USER = {'name': 'dora', 'password': 'dora pw 123'}


class ConsoleBrowserTest(IMTestCase):
    users = {}

    def setUp(self):
        self.chromium = webrun.chromium_binary()
        webrun.node_binary()
        webrun.require_packages('playwright-core')

    def run_phase(self, phase, base, extra=None):
        config = {
            'base': base,
            'chromium': self.chromium,
            'artefacts': str(self.artefacts),
            'state': str(self.artefacts / 'state.json'),
            'phase': phase,
            'admin': ADMIN,
            'user': USER,
            'step_ms': STEP_S * 1000,
            'total_ms': (RUN_S - 10) * 1000,
        }
        config.update(extra or {})
        with webrun.NodeRun('console_admin.mjs', config) as run:
            result = run.wait(RUN_S)
            if not result['ok']:
                sys.stderr.write('console_admin.mjs stderr:\n%s\n' % run.stderr()[-8000:])
        self.assertTrue(result['ok'], webrun.describe(result))
        self.assertEqual(result['page_errors'], [], 'uncaught errors in %s' % phase)
        self.assertEqual(result['console_errors'], [], 'console errors in %s' % phase)
        self.assertEqual(result['external_requests'], [], 'requests leaving the server')
        self.assertEqual(result['failed_requests'], [], 'requests that failed')
        self.assertEqual(result['wide_pages'], [], 'pages wider than a 390-pixel phone')
        for shot in result['screenshots']:
            self.assertTrue(Path(shot).is_file(), shot)
        sys.stdout.write('%s: %d pages, screenshots in %s\n' % (phase, len(result['pages']),
                                                                 self.artefacts))
        return result

    def properties(self, s, key):
        with open(os.path.join(s.data_dir, 'api.key')) as f:
            token = f.read().strip()
        req = urllib.request.Request('http://127.0.0.1:%d/api/v1/properties/%s'
                                     % (s.ports['admin'], key),
                                     headers={'Authorization': 'Bearer ' + token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def test_console_end_to_end(self):
        self.artefacts = webrun.ARTEFACTS / 'browser-console'
        shutil.rmtree(self.artefacts, ignore_errors=True)
        self.artefacts.mkdir(parents=True)
        s = self.start_server(admin__port=0, listeners=('c2s', 'admin'))
        with open(os.path.join(s.data_dir, 'setup.token')) as f:
            token = f.read().strip()
        base = 'http://127.0.0.1:%d' % s.ports['admin']
        self.run_phase('setup', base, {'token': token})
        self.assertFalse(os.path.exists(os.path.join(s.data_dir, 'setup.token')))

        # The user made in the browser logs in over XMPP and is seen, then kicked.
        c = Client(s)
        self.addCleanup(c.close)
        jid = c.login(USER['name'], USER['password'], resource='laptop')
        self.assertEqual(jid, 'dora@localhost/laptop')
        result = self.run_phase('kick', base, {'jid': jid})
        row = result['session_row']
        self.assertEqual(row[:6], [jid, 'laptop', '127.0.0.1', c.tls_version(), 'SCRAM-SHA-256', 'tcp'],
                         row)
        c.assert_stream_error('policy-violation')
        self.assertGreater(result['history_samples'], 0, 'the dashboard drew no sample')

        # A room, and registration opened from the settings page: live at once.
        self.assertEqual(self.properties(s, 'registration.open')['value'], 'false')
        extra = {'setting': {'key': 'registration.open', 'value': 'true'}}
        if os.environ.get('HEARTH_CONSOLE_ROOMS', '1') == '1':
            extra['room'] = {'name': 'lounge'}
        self.run_phase('manage', base, extra)
        self.assertEqual(self.properties(s, 'registration.open')['value'], 'true')
        r = Client(s)
        self.addCleanup(r.close)
        r.connect()
        r.open_stream()
        r.starttls()
        r.open_stream()
        reply = r.iq('set', "<query xmlns='jabber:iq:register'><username>eve</username>"
                     "<password>eve pw 123</password></query>")
        self.assertEqual(reply.get('type'), 'result')


if __name__ == '__main__':
    main()
