"""Runtime settings through /api/v1/properties against a live hearthd: the listing and one key,
each refusal (400 bad value naming the key and its bounds, 404 unknown, 409 not runtime or fixed
by --set), a change stored in the database and applied on every worker without a restart
(registration opened live lets an in-band registration through, a lowered offline quota bounces
the next offline message), DELETE back to the default, the stored value read at the next start,
and SIGHUP reading the database again."""

import os
import signal
import sqlite3

from hearth import Client, main, stanza_error, to_str, wait_for
from imlib import IMClient, bare, err, is_msg, offline_count, wait_offline_rows
from test_admin_api import Admin, AdminCase
from test_register import reg_query

USERS = {'alice': 'wonderland', 'bob': 'builder'}


def stored_properties(s):
    db = sqlite3.connect('file:%s?mode=ro' % os.path.join(s.data_dir, 'hearth.db'), uri=True)
    try:
        return dict(db.execute("SELECT name, value FROM properties WHERE name LIKE 'config.%'"))
    finally:
        db.close()


class PropertiesCase(AdminCase):
    def admin(self, s):
        return Admin(s, auth='Bearer ' + self.local_key(s))

    def put(self, a, key, value):
        return a.req('PUT', '/api/v1/properties/' + key, {'value': value})

    def register(self, s, user, pw):
        c = Client(s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.open_stream()
        return c.iq('set', reg_query(user, pw))


class ListTest(PropertiesCase):
    def test_listing_and_one_key(self):
        s = self.server({'registration.min_password': '8'})
        a = self.admin(s)
        code, _, doc = a.req('GET', '/api/v1/properties')
        self.assertEqual(code, 200, doc)
        props = {p['key']: p for p in doc['properties']}
        for key in ('server.domain', 'registration.open', 'offline.quota', 'log.level',
                    'muc.default_persistent', 'muc.default_max_users', 'muc.default_history'):
            self.assertIn(key, props)
        fields = {'key', 'value', 'default', 'type', 'runtime', 'fixed', 'stored', 'help', 'min',
                  'max', 'allowed'}
        for p in props.values():
            self.assertEqual(set(p), fields, p)
        self.assertEqual(props['offline.quota'],
                         {'key': 'offline.quota', 'value': '1000', 'default': '1000',
                          'type': 'int', 'runtime': True, 'fixed': False, 'stored': False,
                          'help': props['offline.quota']['help'], 'min': 0, 'max': 1000000,
                          'allowed': None})
        self.assertEqual(props['registration.open']['type'], 'bool')
        self.assertEqual(props['registration.open']['allowed'], ['true', 'false'])
        self.assertEqual(props['log.level']['type'], 'enum')
        self.assertEqual(props['log.level']['allowed'], ['error', 'warn', 'info', 'debug'])
        self.assertEqual(props['server.domain']['type'], 'string')
        self.assertFalse(props['server.domain']['runtime'])
        self.assertTrue(props['server.domain']['fixed'])  # the harness gives it with --set
        self.assertEqual(props['registration.min_password']['value'], '8')
        self.assertTrue(props['registration.min_password']['fixed'])
        code, _, one = a.req('GET', '/api/v1/properties/offline.quota')
        self.assertEqual(code, 200, one)
        self.assertEqual(one, props['offline.quota'])
        self.assert_error(a.req('GET', '/api/v1/properties/no.such'), 404)
        self.assert_error(a.req('POST', '/api/v1/properties'), 405)
        self.assert_error(a.req('POST', '/api/v1/properties/offline.quota', {'value': '1'}), 405)
        self.assert_error(a.req('GET', '/api/v1/properties', auth=None), 401)
        code, _, api = a.req('GET', '/api/v1/openapi.json')
        self.assertEqual(set(api['paths']['/properties']), {'get'})
        self.assertEqual(set(api['paths']['/properties/{key}']), {'get', 'put', 'delete'})
        self.assertEqual(set(api['paths']['/properties/{key}']['put']['responses']),
                         {'200', '400', '401', '403', '404', '409', '413', '415', '429'})


class ChangeTest(PropertiesCase):
    def test_refusals(self):
        s = self.server({'registration.min_password': '8'})
        a = self.admin(s)
        r = self.put(a, 'offline.quota', '-5')
        self.assert_error(r, 400)
        self.assertIn('offline.quota', r[2]['error'])
        self.assertIn('1000000', r[2]['error'])
        r = self.put(a, 'registration.open', 'perhaps')
        self.assert_error(r, 400)
        self.assertIn('registration.open', r[2]['error'])
        self.assert_error(self.put(a, 'offline.quota', 2.5), 400)
        self.assert_error(self.put(a, 'offline.quota', None), 400)
        self.assert_error(a.req('PUT', '/api/v1/properties/offline.quota', {}), 400)
        self.assert_error(a.req('PUT', '/api/v1/properties/offline.quota', raw=b'5',
                                ctype='text/plain'), 415)
        self.assert_error(self.put(a, 'no.such', '1'), 404)
        self.assert_error(a.req('DELETE', '/api/v1/properties/no.such'), 404)
        r = self.put(a, 'server.domain', 'example.org')
        self.assert_error(r, 409)
        self.assertIn('server.domain', r[2]['error'])
        self.assert_error(a.req('DELETE', '/api/v1/properties/server.domain'), 409)
        r = self.put(a, 'registration.min_password', '10')
        self.assert_error(r, 409)
        self.assertIn('fixed', r[2]['error'])
        self.assert_error(a.req('DELETE', '/api/v1/properties/registration.min_password'), 409)
        self.assertEqual(stored_properties(s), {})

    def test_registration_opened_live(self):
        s = self.server({'registration.rate_limit': '0'}, users=USERS)
        a = self.admin(s)
        r = self.register(s, 'henry', 'henrypassword')
        self.assertEqual(stanza_error(r)[1], 'service-unavailable', to_str(r))
        code, _, doc = self.put(a, 'registration.open', True)
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc['value'], doc['stored'], doc['fixed']), ('true', True, False))
        self.assertEqual(stored_properties(s), {'config.registration.open': 'true'})
        # Every worker has it (two in the harness): a few fresh streams land on both.
        for i in range(4):
            r = self.register(s, 'henry%d' % i, 'henrypassword')
            self.assertEqual(r.get('type'), 'result', to_str(r))
        code, _, _ = a.req('DELETE', '/api/v1/properties/registration.open')
        self.assertEqual(code, 204)
        self.assertEqual(stored_properties(s), {})
        code, _, doc = a.req('GET', '/api/v1/properties/registration.open')
        self.assertEqual((doc['value'], doc['stored']), ('false', False))
        for i in range(4):
            r = self.register(s, 'ivan%d' % i, 'ivanpassword')
            self.assertEqual(stanza_error(r)[1], 'service-unavailable', to_str(r))

    def test_offline_quota_lowered_live(self):
        s = self.server(users=USERS)
        a = self.admin(s)
        alice = IMClient(s)
        self.addCleanup(alice.close)
        alice.login('alice', USERS['alice'])
        alice.presence()
        first = alice.message('bob@localhost', 'first')
        wait_offline_rows(s, 'bob', 1)
        code, _, doc = self.put(a, 'offline.quota', 1)
        self.assertEqual((code, doc['value']), (200, '1'), doc)
        over = alice.message('bob@localhost', 'over the quota now')
        e = alice.wait(lambda st: is_msg(st, id_=over), what='error for the message over the quota')
        self.assertEqual(err(e)[1], 'service-unavailable', to_str(e))
        self.assertEqual(bare(e.get('from')), 'bob@localhost')
        self.assertEqual(offline_count(s, 'bob'), 1)
        self.assertNotEqual(first, over)

    def test_stored_value_used_at_start_unless_fixed(self):
        s = self.server({'registration.rate_limit': '0'})
        a = self.admin(s)
        self.assertEqual(self.put(a, 'registration.open', 'yes')[0], 200)
        self.assertEqual(self.put(a, 'offline.quota', '7')[0], 200)
        s.stop()
        s.settings['offline.quota'] = '9'  # the command line wins over the database
        s.start()
        a = self.admin(s)
        code, _, doc = a.req('GET', '/api/v1/properties/registration.open')
        self.assertEqual((doc['value'], doc['stored'], doc['fixed']), ('true', True, False), doc)
        code, _, doc = a.req('GET', '/api/v1/properties/offline.quota')
        self.assertEqual((doc['value'], doc['stored'], doc['fixed']), ('9', True, True), doc)
        self.assert_error(self.put(a, 'offline.quota', '8'), 409)
        r = self.register(s, 'judy', 'judypassword')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        s.wait_log(r'offline\.quota = 7 in the database is not used')

    def test_sighup_reads_the_database_again(self):
        s = self.server({'registration.rate_limit': '0'})
        a = self.admin(s)
        db = sqlite3.connect(os.path.join(s.data_dir, 'hearth.db'), timeout=10)
        with db:
            db.execute("INSERT INTO properties (name, value) VALUES "
                       "('config.registration.open', 'true'), ('config.offline.quota', '12')")
        db.close()
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_log(r'\breloaded\b')
        code, _, doc = a.req('GET', '/api/v1/properties/offline.quota')
        self.assertEqual((doc['value'], doc['stored']), ('12', True), doc)
        r = self.register(s, 'kim', 'kimpassword')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        # Removed from the database: back to the default at the next SIGHUP.
        db = sqlite3.connect(os.path.join(s.data_dir, 'hearth.db'), timeout=10)
        with db:
            db.execute("DELETE FROM properties WHERE name = 'config.offline.quota'")
        db.close()
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_log(r'\breloaded\b', count=2)
        code, _, doc = a.req('GET', '/api/v1/properties/offline.quota')
        self.assertEqual((doc['value'], doc['stored']), ('1000', False), doc)
        self.assertTrue(s.alive())


if __name__ == '__main__':
    main()
