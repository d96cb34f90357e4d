"""Storage failures as clients see them: a message for an offline user that
cannot be stored bounces (internal-server-error) instead of vanishing, on
either driver; and PostgreSQL stopped under a running hearthd (a private
cluster of scripts/pg-test-cluster.sh; skipped without PostgreSQL): sessions
online keep chatting, logins fail with temporary-auth-failure, messages to
offline users bounce, nothing crashes, and once the database is back
everything works again without restarting hearthd."""

from hearth import DOMAIN, PgTestMixin, SaslFailure, main, to_str, wait_for
from imlib import IMClient, IMTestCase, err, is_msg, wait_offline_rows

AJ = 'alice@' + DOMAIN
BJ = 'bob@' + DOMAIN
DJ = 'dave@' + DOMAIN


def refuse_offline_sql(driver):
    """SQL that makes every new offline message fail at the database."""
    if driver == 'pgsql':
        return 'ALTER TABLE offline_messages ADD CONSTRAINT test_refused CHECK (false) NOT VALID'
    return ("CREATE TRIGGER test_refused BEFORE INSERT ON offline_messages "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;")


def allow_offline_sql(driver):
    if driver == 'pgsql':
        return 'ALTER TABLE offline_messages DROP CONSTRAINT test_refused'
    return 'DROP TRIGGER test_refused;'


class OfflineStoreFailureTest(IMTestCase):
    def test_unstored_offline_message_bounces(self):
        s = self.start_server()
        driver = s.settings.get('storage.driver', 'sqlite')
        a = self.connect(s, 'alice', 'a')
        s.db_exec(refuse_offline_sql(driver))
        id_ = a.message(BJ, 'cannot be kept')
        e = a.wait(lambda st: is_msg(st, id_=id_), what='a bounce for the unstored message')
        self.assertEqual(e.get('type'), 'error', to_str(e))
        self.assertEqual(err(e), ('cancel', 'internal-server-error'), to_str(e))
        self.assertEqual(e.get('from'), BJ, to_str(e))
        # The database accepts them again: stored and delivered, no restart.
        s.db_exec(allow_offline_sql(driver))
        id2 = a.message(BJ, 'kept')
        a.expect_none(lambda st: is_msg(st, id_=id2, type_='error'), 'a bounce once storable')
        wait_offline_rows(s, 'bob', 1)
        b = self.connect(s, 'bob', 'b')
        got = b.wait(lambda st: is_msg(st), what='the stored message')
        self.assertEqual(got.get('id'), id2)
        b.expect_none(is_msg, 'the refused message delivered after all')


class PostgresStoppedTest(PgTestMixin, IMTestCase):
    pg_private = True  # it stops and starts the cluster under the server

    def cluster(self, action):
        self.pg.action(action)

    def start_pg_server(self):
        return self.start_server(storage__driver='pgsql', storage__dsn=self.pg.new_db(self))

    def login_fails(self, s, user, pw):
        c = IMClient(s)
        self.addCleanup(c.close)
        try:
            c.login(user, pw)
        except SaslFailure as e:
            return e.condition
        return None

    def test_stopped_then_back(self):
        s = self.start_pg_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')

        self.cluster('pause')
        # Online sessions chat on (the archive is not kept meanwhile).
        id_ = a.message(BJ, 'while the database is down')
        got = b.wait(lambda st: is_msg(st, id_=id_), what='a message between online users')
        self.assertEqual(got.findtext('{jabber:client}body'), 'while the database is down')
        # A login needs the account: refused as temporary.
        self.assertEqual(self.login_fails(s, 'carol', self.users['carol']), 'temporary-auth-failure')
        # A message to an offline user is answered, never dropped: the user's state cannot be
        # loaded because the database failed (internal-server-error, with a text to try again).
        id_ = a.message(DJ, 'for dave')
        e = a.wait(lambda st: is_msg(st, id_=id_), what='a bounce for the offline user')
        self.assertEqual(err(e), ('cancel', 'internal-server-error'), to_str(e))
        a.sync()
        b.sync()
        s.assert_alive()

        self.cluster('resume')
        # Back without a restart: the driver reconnects within its longest retry delay.
        def login_ok():
            return self.login_fails(s, 'carol', self.users['carol']) is None
        wait_for(login_ok, 20, 'a login once PostgreSQL is back', interval=0.25)
        id_ = a.message(DJ, 'stored now')
        a.expect_none(lambda st: is_msg(st, id_=id_, type_='error'), 'a bounce once back')
        wait_offline_rows(s, 'dave', 1)
        d = self.connect(s, 'dave', 'd')
        got = d.wait(lambda st: is_msg(st), what='the offline message')
        self.assertEqual(got.get('id'), id_)
        a.sync()
        b.sync()


if __name__ == '__main__':
    main()
