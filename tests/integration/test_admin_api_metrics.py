"""What /metrics adds for operators, parsed from the Prometheus text: the offline store's size
and the archive's rows (sampled every admin.metrics_sample seconds), the storage latency
histogram (cumulative buckets, +Inf equal to the count), and each worker's loop lag."""

import os
import re
import sqlite3

from hearth import main, wait_for
from imlib import IMClient
from test_admin_api import Admin, AdminCase

USERS = {'alice': 'wonderland', 'bob': 'builder'}
SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)$')


def parse(text):
    values, types = {}, {}
    for line in text.decode().splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            types[name] = kind
        elif line and not line.startswith('#'):
            m = SAMPLE.match(line)
            assert m, 'not a sample line: %r' % line
            values[m.group(1) + (m.group(2) or '')] = float(m.group(3))
    return values, types


def archive_rows(s):
    db = sqlite3.connect('file:%s?mode=ro' % os.path.join(s.data_dir, 'hearth.db'), uri=True)
    try:
        return db.execute('SELECT count(*) FROM archive').fetchone()[0]
    finally:
        db.close()


class MetricsAddedTest(AdminCase):
    def test_sizes_latency_and_lag(self):
        s = self.server({'admin.metrics_sample': '1'}, users=USERS)
        a = Admin(s, auth='Bearer ' + self.local_key(s))

        def scrape():
            code, _, text = a.req('GET', '/metrics')
            self.assertEqual(code, 200)
            return parse(text)

        alice = IMClient(s)
        self.addCleanup(alice.close)
        alice.login('alice', USERS['alice'])
        alice.presence()
        for i in range(3):
            alice.message('bob@localhost', 'while you were out %d' % i)
        wait_for(lambda: scrape()[0].get('hearth_offline_messages') == 3, 10,
                 'three offline messages counted')
        wait_for(lambda: scrape()[0].get('hearth_archive_rows') == archive_rows(s) > 0, 10,
                 'the archive rows counted')
        m, types = scrape()
        self.assertEqual(types['hearth_offline_messages'], 'gauge')
        self.assertEqual(types['hearth_storage_latency_seconds'], 'histogram')
        buckets = sorted((float(k.split('"')[1]), v) for k, v in m.items()
                         if k.startswith('hearth_storage_latency_seconds_bucket')
                         and '+Inf' not in k)
        self.assertGreaterEqual(len(buckets), 10)
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))  # cumulative
        total = m['hearth_storage_latency_seconds_bucket{le="+Inf"}']
        self.assertEqual(total, m['hearth_storage_latency_seconds_count'])
        self.assertGreaterEqual(total, counts[-1])
        self.assertGreater(total, 0)
        self.assertGreater(m['hearth_storage_latency_seconds_sum'], 0)
        for w in ('0', '1'):
            lag = m['hearth_worker_loop_lag_seconds{worker="%s"}' % w]
            self.assertGreaterEqual(lag, 0)
            self.assertLess(lag, 1)
            self.assertGreaterEqual(m['hearth_worker_loop_lag_max_seconds{worker="%s"}' % w], lag)
            self.assertIn('hearth_worker_inbox_depth{worker="%s"}' % w, m)
        # Delivered: the offline store empties, and the next sample says so.
        bob = IMClient(s)
        self.addCleanup(bob.close)
        bob.login('bob', USERS['bob'])
        bob.presence()
        wait_for(lambda: scrape()[0].get('hearth_offline_messages') == 0, 10,
                 'the offline store empty again')


if __name__ == '__main__':
    main()
