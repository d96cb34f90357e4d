"""storage.pool_size on PostgreSQL: hearthd opens that many connections, each worker's requests
go through one of them, and what users do on both workers (logins, rosters, offline messages and
their order, vCards, the archive) comes out as with one connection. SQLite refuses a pool, at
--check-config and at start. PostgreSQL from HEARTH_TEST_PG_DSN or a private cluster; skipped
without one."""

import subprocess
import unittest

from hearth import DOMAIN, NS_CLIENT, PgTestMixin, Server, main, pg_sql, q, to_str, wait_for
from imlib import IMClient, is_msg, wait_offline_rows

USERS = {'u%d' % i: 'pw%d' % i for i in range(8)}
NS_ROSTER = 'jabber:iq:roster'


class StoragePoolTest(PgTestMixin, unittest.TestCase):
    def server(self, **settings):
        s = Server(users=USERS, **settings)
        self.addCleanup(s.close)
        return s

    def login(self, s, user):
        c = IMClient(s)
        self.addCleanup(c.close)
        c.login(user, USERS[user], resource='r')
        c.roster_get()
        return c

    def test_connections_and_traffic(self):
        dsn = self.pg.new_db(self)
        s = self.server(**{'storage.driver': 'pgsql', 'storage.dsn': dsn,
                           'storage.pool_size': '3', 'server.workers': '2'})
        s.start()
        db = dsn.rsplit('/', 1)[1]
        count = ("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
                 "application_name = 'hearthd'" % db)
        self.assertEqual(pg_sql(None, count, dsn=dsn), [['3']])
        # eight users spread over the two workers; each half online, each writes to the other
        online = {u: self.login(s, u) for u in ('u0', 'u1', 'u2', 'u3')}
        for u, c in online.items():
            c.presence()
            for i in range(4, 8):
                c.roster_set('u%d@%s' % (i, DOMAIN), name='friend %d' % i, groups=('G%s' % u,))
                c.iq_ok('set', "<vCard xmlns='vcard-temp'><FN>%s</FN></vCard>" % u)
                for n in range(3):
                    c.message('u%d@%s' % (i, DOMAIN), '%s to u%d #%d' % (u, i, n))
        for c in online.values():
            c.sync()
        for i in range(4, 8):
            wait_offline_rows(s, 'u%d' % i, 12)
        # each offline user gets every message, each sender's in the order sent
        for i in range(4, 8):
            c = self.login(s, 'u%d' % i)
            c.presence()
            got = c.wait_n(lambda st: is_msg(st, type_='chat'), 12, what='12 offline messages')
            bodies = [m.findtext(q(NS_CLIENT, 'body')) for m in got]
            for u in online:
                mine = [b for b in bodies if b.startswith(u + ' ')]
                self.assertEqual(mine, ['%s to u%d #%d' % (u, i, n) for n in range(3)], bodies)
        for u, c in online.items():
            roster = c.roster()
            self.assertEqual(sorted(roster), ['u%d@%s' % (i, DOMAIN) for i in range(4, 8)])
            self.assertEqual({it['groups'][0] for it in roster.values()}, {'G%s' % u})
            v = c.iq_ok('get', "<vCard xmlns='vcard-temp'/>")
            self.assertEqual(v.findtext('{vcard-temp}vCard/{vcard-temp}FN'), u, to_str(v))
        # after a restart the pool opens again and everything read back is the same
        s.restart()
        wait_for(lambda: pg_sql(None, count, dsn=dsn) == [['3']], 10, 'three connections again')
        c = self.login(s, 'u0')
        self.assertEqual(len(c.roster()), 4)

    def test_archive_on_two_connections(self):
        # A message's two parties are homed on two workers about half the time, so with a pool
        # their archive writes run on two connections at once, both storing the message's text
        # under one key. Inside the two batches' transactions that deadlocked (PostgreSQL then
        # failed one request per cycle, and a party's copy was lost). A burst from four users
        # to four others, every message archived for both: all of it is stored, each text once.
        dsn = self.pg.new_db(self)
        s = self.server(**{'storage.driver': 'pgsql', 'storage.dsn': dsn,
                           'storage.pool_size': '2', 'server.workers': '2'})
        s.start()
        clients = {u: self.login(s, u) for u in USERS}
        for c in clients.values():
            c.presence()
        for c in clients.values():
            c.sync()
        per = 25
        for n in range(per):
            for a in range(4):
                for b in range(4, 8):
                    clients['u%d' % a].message('u%d@%s' % (b, DOMAIN), 'u%d to u%d #%d' % (a, b, n))
        for b in range(4, 8):
            clients['u%d' % b].wait_n(lambda st: is_msg(st, type_='chat'), 4 * per,
                                      what='%d messages' % (4 * per))
        total = 4 * 4 * per
        wait_for(lambda: pg_sql(None, 'SELECT count(*) FROM archive', dsn=dsn) == [[str(2 * total)]],
                 20, 'both parties of %d messages archived' % total)
        self.assertEqual(pg_sql(None, 'SELECT count(*) FROM archive_msg', dsn=dsn), [[str(total)]])
        self.assertEqual(pg_sql(None, 'SELECT count(*) FROM archive WHERE stanza IS NOT NULL',
                                dsn=dsn), [['0']])
        self.assertNotIn('deadlock', s.current_log())
        self.assertNotRegex(s.current_log(), r'archive.*(failed|error)')

    def test_sqlite_refuses_a_pool(self):
        s = self.server(**{'storage.driver': 'sqlite', 'storage.pool_size': '2'})
        r = subprocess.run(s.command_line() + ['--check-config'], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('storage.pool_size is 2, but the sqlite driver has one connection',
                      r.stderr)
        r = subprocess.run(s.command_line(), capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('storage.pool_size is 2', r.stderr)
        r = subprocess.run(s.command_line() + ['--set', 'storage.pool_size=65', '--check-config'],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('storage.pool_size', r.stderr)


if __name__ == '__main__':
    main()
