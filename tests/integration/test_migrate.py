"""hearthctl migrate --to pgsql: a SQLite store that a real hearthd filled (accounts, a roster
with its version, pending requests, offline messages, vCards, private XML, a block list, the
message archive, a persistent room with its archive, PEP items, a runtime setting) copied into
an empty PostgreSQL database, every table's count checked; hearthd started on the copy serves
all of it and goes on writing after it. A target that holds data, a running server, bad
arguments and a row PostgreSQL refuses each fail with the reason and leave the target as it
was. PostgreSQL comes from HEARTH_TEST_PG_DSN or a private cluster (scripts/pg-test-cluster.sh);
skipped without one."""

import re

from hearth import DOMAIN, NS_CLIENT, PgTestMixin, Server, main, pg_sql, q, to_str
from imlib import NS_DELAY, is_msg, is_sub, wait_offline_rows
from test_muc_archive import NS_MAM, PERSISTENT, ArchiveTestCase, mam_form

AJ, BJ, CJ, DJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'bob', 'carol', 'dave'))
SQLITE = {'storage.driver': 'sqlite'}
NS_ROSTER = 'jabber:iq:roster'
NS_NOTES = 'urn:example:hearth-migrate'
NS_NICK = 'http://jabber.org/protocol/nick'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
LINE = re.compile(r'^\s+(\w+)\s+(\d+) rows, counts match$')


class MigrateTest(PgTestMixin, ArchiveTestCase):
    def setUp(self):
        pass  # each test starts its own server on SQLite (MucTestCase would start one now)

    def server(self, users=None, **settings):
        """A server this test stops and starts itself (IMTestCase's must run to the end)."""
        s = Server(users=self.users if users is None else users, **settings)
        self.addCleanup(s.close)
        return s

    def start_server(self, users=None, **settings):
        s = self.server(users, **settings)
        s.start()
        return s

    def new_db(self):
        return self.pg.new_db(self)

    def pg_counts(self, dsn):
        """Rows per table of the target (none when it has no schema yet)."""
        tables = [r[0] for r in pg_sql(None, "SELECT relname FROM pg_class WHERE relkind = 'r' "
                                       "AND relnamespace = current_schema()::regnamespace "
                                       "AND relname <> 'schema_version' ORDER BY 1", dsn=dsn)]
        return {t: int(pg_sql(None, 'SELECT count(*) FROM %s' % t, dsn=dsn)[0][0])
                for t in tables}

    def lite_counts(self, s):
        tables = [r[0] for r in s.db_rows("SELECT name FROM sqlite_schema WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite%' "
                                          "AND name <> 'schema_version'")]
        return {t: s.db_rows('SELECT count(*) FROM %s' % t)[0][0] for t in tables}

    def my_archive(self, c, with_):
        """c's own archive with with_: (bodies, archive ids), oldest first."""
        r = c.iq('set', "<query xmlns='%s' queryid='mine'>%s</query>"
                 % (NS_MAM, mam_form({'with': with_})))
        self.assertEqual(r.get('type'), 'result', to_str(r))
        found = []
        for m in c.take(lambda st: is_msg(st) and st.find(q(NS_MAM, 'result')) is not None):
            res = m.find(q(NS_MAM, 'result'))
            body = m.find('.//' + q(NS_CLIENT, 'body'))
            found.append((body.text if body is not None else None, res.get('id')))
        return [b for b, _ in found], [i for _, i in found]

    def migrate(self, s, *args, input=None):
        return s.ctl('migrate', *args, input=input, timeout=120)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        return r

    def refused(self, r, why):
        self.assertEqual(r.returncode, 1, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        self.assertIn(why, r.stderr)
        self.assertRegex(r.stderr, r'^hearthctl: migrate: ')

    # -- the store, filled by clients ----------------------------------------

    def fill(self, s):
        """What each kind of record looks like after real use; returns what the checks after
        the move need to know."""
        self.srv = s
        a, b = self.client('alice'), self.client('bob')
        a.roster_set(BJ, name='Bob B', groups=('Friends', 'Work & play'))
        a.sub('subscribe', BJ)
        b.wait(lambda st: is_sub(st, 'subscribe', AJ), what="alice's request")
        b.sub('subscribed', AJ)
        a.wait(lambda st: is_sub(st, 'subscribed', BJ), what="bob's approval")
        a.sub('subscribe', CJ)  # carol is offline: pending
        a.iq_ok('set', "<vCard xmlns='vcard-temp'><FN>Alice &#233;</FN></vCard>")
        a.iq_ok('set', "<query xmlns='jabber:iq:private'><n xmlns='%s'>kept</n></query>"
                % NS_NOTES)
        a.block('spam@elsewhere.example')
        a.iq_ok('set', "<pubsub xmlns='%s'><publish node='%s'><item id='current'>"
                       "<nick xmlns='%s'>Ally</nick></item></publish></pubsub>"
                % (NS_PUBSUB, NS_NICK, NS_NICK))
        # chat, archived for both; then offline messages for carol and dave
        for i in range(3):
            id_ = a.message(BJ, 'chat %d \u2603' % i)
            b.wait(lambda st: is_msg(st, id_=id_), what='chat %d' % i)
        a.message(CJ, 'for carol, one')
        a.message(CJ, 'for carol, two \u00e9')
        a.message(DJ, 'for dave')
        wait_offline_rows(s, 'carol', 2)
        wait_offline_rows(s, 'dave', 1)
        room = self.create(a, 'moved', 'Alice', PERSISTENT)
        self.enter(b, room, 'Bob')
        sids = self.talk(room, [(a, 'Alice', 'before one'), (b, 'Bob', 'before two')])
        self.settle(a, b)
        ver = a.roster_get().find(q(NS_ROSTER, 'query')).get('ver')
        self.assertTrue(ver)
        return {'room': room, 'sids': sids, 'ver': ver}

    # -- tests ---------------------------------------------------------------

    def test_whole_store_moves_and_serves(self):
        s = self.start_server(**SQLITE)
        known = self.fill(s)
        s.stop()
        self.ok(s.ctl('set', 'offline.quota', '77'))  # a runtime setting, stored
        counts = self.lite_counts(s)
        for t in ('accounts', 'roster_items', 'roster_groups', 'sub_requests', 'offline_messages',
                  'vcards', 'private_xml', 'blocklist', 'archive', 'archive_msg', 'documents',
                  'logs', 'muc_affiliations', 'pubsub_nodes', 'pubsub_items', 'properties'):
            self.assertGreater(counts.get(t, 0), 0, 'the filled store has no %s rows' % t)

        dsn = self.new_db()
        r = self.ok(self.migrate(s, '--to', 'pgsql', dsn))
        reported = {m.group(1): int(m.group(2))
                    for m in map(LINE.match, r.stdout.splitlines()) if m}
        self.assertEqual(reported, counts, r.stdout)
        self.assertEqual(self.pg_counts(dsn), counts)
        self.assertIn('left as it was', r.stderr)
        self.assertEqual(self.lite_counts(s), counts)  # the source is untouched

        # hearthd on the copy
        s.settings.update({'storage.driver': 'pgsql', 'storage.dsn': dsn})
        self.assertIn('77', self.ok(s.ctl('get', 'offline.quota')).stdout)
        s.start()
        a = self.connect(s, 'alice', roster=False, mech='SCRAM-SHA-256')
        # the roster version carried over: nothing to send for the version alice holds
        r = a.roster_get(ver=known['ver'])
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertIsNone(r.find(q(NS_ROSTER, 'query')), to_str(r))
        item = a.item(BJ)
        self.assertEqual((item['name'], sorted(item['groups']), item['subscription']),
                         ('Bob B', ['Friends', 'Work & play'], 'to'))
        self.assertEqual(a.item(CJ)['ask'], 'subscribe')
        v = a.iq_ok('get', "<vCard xmlns='vcard-temp'/>")
        self.assertEqual(v.findtext('{vcard-temp}vCard/{vcard-temp}FN'), 'Alice \u00e9')
        p = a.iq_ok('get', "<query xmlns='jabber:iq:private'><n xmlns='%s'/></query>" % NS_NOTES)
        self.assertEqual(p.findtext('{jabber:iq:private}query/{%s}n' % NS_NOTES), 'kept')
        self.assertEqual(a.blocklist(), ['spam@elsewhere.example'])
        n = a.iq_ok('get', "<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (NS_PUBSUB, NS_NICK))
        self.assertIn('Ally', to_str(n))
        # the user archive, then one more message archived after the old ones
        bodies, ids = self.my_archive(a, BJ)
        self.assertEqual(bodies, ['chat %d \u2603' % i for i in range(3)])
        b = self.connect(s, 'bob', roster=False, mech='SCRAM-SHA-1')
        self.assertEqual(b.item(AJ)['subscription'], 'from')
        id_ = a.message(BJ, 'chat after')
        b.wait(lambda st: is_msg(st, id_=id_), what='a message after the move')
        bodies2, ids2 = self.my_archive(a, BJ)
        self.assertEqual(bodies2, bodies + ['chat after'])
        self.assertEqual(ids2[:3], ids)
        # dave's old message is still stored when a new one comes: the new one gets an id of
        # its own (the identity sequence continued after the copied rows)
        id_ = a.message(DJ, 'for dave, after')
        a.expect_none(lambda st: is_msg(st, id_=id_, type_='error'), 'a bounce for dave')
        wait_offline_rows(s, 'dave', 2)
        d = self.connect(s, 'dave', roster=False, presence=False, mech='PLAIN')
        d.presence()
        got = d.wait_n(lambda st: is_msg(st, type_='chat'), 2, what="dave's two messages")
        self.assertEqual([m.findtext(q(NS_CLIENT, 'body')) for m in got],
                         ['for dave', 'for dave, after'])
        self.assertIsNotNone(got[0].find(q(NS_DELAY, 'delay')), to_str(got[0]))
        # carol: her offline messages in order and alice's request
        c = self.connect(s, 'carol', roster=False, presence=False)
        c.presence()
        got = c.wait_n(lambda st: is_msg(st, type_='chat'), 2, what="carol's messages")
        self.assertEqual([m.findtext(q(NS_CLIENT, 'body')) for m in got],
                         ['for carol, one', 'for carol, two \u00e9'])
        c.wait(lambda st: is_sub(st, 'subscribe', AJ), what="alice's pending request")
        # the room: its configuration, its archive, and a message archived after the old ones
        room = known['room']
        self.enter(b, room, 'Bob')
        self.enter(a, room, 'Alice')
        self.assertEqual(self.config_values(a, room).get('muc#roomconfig_persistentroom'), ['1'])
        p = self.page(b, room)
        self.assertEqual((p.bodies(), p.ids()), (['before one', 'before two'], known['sids']))
        after = self.talk(room, [(a, 'Alice', 'after')])
        p = self.page(b, room)
        self.assertEqual(p.bodies(), ['before one', 'before two', 'after'])
        self.assertEqual(p.ids(), known['sids'] + after)

    def test_target_with_data_refused(self):
        s = self.start_server(**SQLITE)
        s.stop()
        dsn = self.new_db()
        self.ok(self.migrate(s, '--to', 'pgsql', dsn))
        before = self.pg_counts(dsn)
        self.assertEqual(before['accounts'], len(self.users))
        r = self.migrate(s, '--to', 'pgsql', dsn)
        self.refused(r, 'the target database is not empty (table accounts has %d rows)'
                     % len(self.users))
        self.assertEqual(self.pg_counts(dsn), before)
        # a target hearthd started on once holds only its generated secret: not data, and the
        # source's secret replaces it; one setting more is data
        dsn2 = self.new_db()
        t = self.server(users={}, **{'storage.driver': 'pgsql', 'storage.dsn': dsn2})
        t.start()
        t.stop()
        secret = lambda dsn: pg_sql(None, "SELECT value FROM properties WHERE name = "
                                    "'server.secret'", dsn=dsn)
        self.assertEqual(len(secret(dsn2)), 1)
        self.ok(t.ctl('set', 'offline.quota', '5'))
        self.refused(self.migrate(s, '--to', 'pgsql', dsn2), 'table properties has 1 rows')
        self.assertEqual(self.pg_counts(dsn2)['accounts'], 0)
        self.ok(t.ctl('unset', 'offline.quota'))
        self.ok(self.migrate(s, '--to', 'pgsql', dsn2))
        self.assertEqual(secret(dsn2), secret(dsn))
        self.assertEqual(self.pg_counts(dsn2), before)

    def test_refused_while_hearthd_runs(self):
        s = self.start_server(**SQLITE)
        dsn = self.new_db()
        self.refused(self.migrate(s, '--to', 'pgsql', dsn), 'hearthd is running')
        self.assertEqual(self.pg_counts(dsn), {})

    def test_bad_arguments(self):
        s = self.start_server(**SQLITE)
        s.stop()
        self.refused(self.migrate(s), 'expected --to pgsql DSN')
        self.refused(self.migrate(s, '--to', 'pgsql'), 'expected --to pgsql DSN')
        self.refused(self.migrate(s, '--to', 'mysql', 'x'), "cannot migrate to 'mysql'")
        self.refused(self.migrate(s, '--to', 'pgsql', 'a', 'b'), "one DSN expected")
        self.refused(self.migrate(s, '--bogus'), 'unknown option --bogus')
        self.refused(self.migrate(s, '--to', 'pgsql', ''), 'needs a PostgreSQL connection')
        self.refused(self.migrate(s, '--to', 'pgsql', '-', input=''), 'no connection string')
        # nothing listens there: libpq's reason, and no password echoed
        r = self.migrate(s, '--to', 'pgsql', 'postgresql://hearth:s3cret@127.0.0.1:1/none')
        self.refused(r, 'cannot connect')
        self.assertNotIn('s3cret', r.stderr + r.stdout)
        # a store already on PostgreSQL is not a source
        dsn = self.new_db()
        r = s.ctl('--set', 'storage.driver=pgsql', '--set', 'storage.dsn=' + dsn, 'migrate',
                  '--to', 'pgsql', dsn)
        self.refused(r, 'storage.driver is pgsql already')

    def test_dsn_from_stdin(self):
        s = self.start_server(**SQLITE)
        s.stop()
        dsn = self.new_db()
        self.ok(self.migrate(s, '--to', 'pgsql', '-', input=dsn + '\n'))
        self.assertEqual(self.pg_counts(dsn)['accounts'], len(self.users))

    def test_refused_row_leaves_target_empty(self):
        s = self.start_server(**SQLITE)
        a = self.connect(s, 'alice', roster=False)
        a.message(DJ, 'kept offline')
        wait_offline_rows(s, 'dave', 1)
        a.close()
        s.stop()
        counts = self.lite_counts(s)
        dsn = self.new_db()
        # the schema made first by a server, then a rule that refuses the offline message
        t = self.start_server(users={}, **{'storage.driver': 'pgsql', 'storage.dsn': dsn})
        t.stop()
        self.assertEqual(self.pg_counts(dsn)['properties'], 1)  # its secret
        pg_sql(None, 'ALTER TABLE offline_messages ADD CONSTRAINT test_refused CHECK (false)',
               dsn=dsn)
        r = self.migrate(s, '--to', 'pgsql', dsn)
        self.refused(r, 'table offline_messages, rows 1-1: PostgreSQL refused them')
        self.assertIn('left as it was', r.stderr)
        counts_after = self.pg_counts(dsn)
        self.assertEqual(counts_after.pop('properties'), 1)  # the secret, not deleted after all
        self.assertEqual(set(counts_after.values()), {0})  # accounts rolled back too
        self.assertEqual(self.lite_counts(s), counts)


if __name__ == '__main__':
    main()
