"""Message Archive Management (XEP-0313, urn:xmpp:mam:2) for user archives:
archiving in both directions under the ids the recipient saw (XEP-0359),
queries by with/start/end, XEP-0059 paging forwards and backwards through
250 messages, preferences (default always/never/roster and the JID lists),
the form-fields discovery, the errors, and persistence across a restart."""

import calendar
import time

from hearth import DOMAIN, NS_CLIENT, NS_DISCO_INFO, q, to_str, xml_escape, main
from imlib import NS_DELAY, NS_SID, DELAY_STAMP, IMTestCase, bare, err, is_iq, is_msg, wait_for

NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_DATA = 'jabber:x:data'
NS_FORWARD = 'urn:xmpp:forward:0'

AJ = 'alice@localhost'
BJ = 'bob@localhost'
CJ = 'carol@localhost'
DJ = 'dave@localhost'


def xep82(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def form(**fields):
    """A submitted mam:2 form; keys with '_' are written with '-'."""
    inner = "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % NS_MAM
    for k, v in fields.items():
        inner += "<field var='%s'><value>%s</value></field>" % (k.replace('_', '-'), xml_escape(v))
    return "<x xmlns='%s' type='submit'>%s</x>" % (NS_DATA, inner)


def rsm(max_=None, after=None, before=None):
    inner = ''
    if max_ is not None:
        inner += '<max>%s</max>' % max_
    if after is not None:
        inner += '<after>%s</after>' % xml_escape(after)
    if before is not None:
        inner += '<before>%s</before>' % xml_escape(before) if before else '<before/>'
    return "<set xmlns='%s'>%s</set>" % (NS_RSM, inner)


class Page:
    """The outcome of one query: results (archive id, forwarded message,
    delay stamp), and the fin's paging data."""

    def __init__(self, reply, results):
        self.reply = reply
        self.results = results
        self.fin = reply.find(q(NS_MAM, 'fin'))
        self.ids = [r[0] for r in results]
        self.bodies = [r[1].findtext(q(NS_CLIENT, 'body')) for r in results]
        s = self.fin.find(q(NS_RSM, 'set')) if self.fin is not None else None
        self.set = s
        self.first = s.find(q(NS_RSM, 'first')) if s is not None else None
        self.last = s.findtext(q(NS_RSM, 'last')) if s is not None else None
        c = s.findtext(q(NS_RSM, 'count')) if s is not None else None
        self.count = int(c) if c is not None else None
        self.complete = self.fin.get('complete') if self.fin is not None else None


class MamTest(IMTestCase):
    def query(self, c, fields=None, paging='', queryid=None, to=None, expect_ok=True):
        """Runs a query; returns a Page (or the error reply when expect_ok is False)."""
        queryid = queryid or c.next_id('qid')
        payload = "<query xmlns='%s' queryid='%s'>%s%s</query>" % (NS_MAM, queryid, fields or '', paging)
        r = c.iq('set', payload, to=to, timeout=15)
        if not expect_ok:
            return r
        self.assertEqual(r.get('type'), 'result', to_str(r))
        msgs = c.take(lambda s: is_msg(s) and s.find(q(NS_MAM, 'result')) is not None
                      and s.find(q(NS_MAM, 'result')).get('queryid') == queryid)
        results = []
        for m in msgs:
            self.assertEqual(m.get('to'), c.jid, to_str(m))
            self.assertIn(m.get('from'), (None, bare(c.jid)), to_str(m))
            res = m.find(q(NS_MAM, 'result'))
            fwd = res.find(q(NS_FORWARD, 'forwarded'))
            self.assertIsNotNone(fwd, to_str(m))
            delay = fwd.find(q(NS_DELAY, 'delay'))
            self.assertIsNotNone(delay, to_str(m))
            self.assertRegex(delay.get('stamp') or '', DELAY_STAMP)
            orig = fwd.find(q(NS_CLIENT, 'message'))
            self.assertIsNotNone(orig, 'forwarded without a jabber:client message: %s' % to_str(m))
            results.append((res.get('id'), orig, delay.get('stamp')))
        p = Page(r, results)
        self.assertIsNotNone(p.fin, to_str(r))
        self.assertIn(p.complete, ('true', 'false'), to_str(r))
        if results:
            self.assertEqual(p.first.text, results[0][0])
            self.assertEqual(p.last, results[-1][0])
        return p

    def assertError(self, r, cond):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r)[1], cond, to_str(r))

    def chat(self, a, b, bodies, to=None):
        """a sends each body to b (online); returns the messages b received."""
        ids = [a.message(to or bare(b.jid), body) for body in bodies]
        return [b.wait(lambda s, i=i: is_msg(s, id_=i), what='message %s' % i) for i in ids]

    def set_prefs(self, c, default, always=(), never=()):
        jl = lambda js: ''.join('<jid>%s</jid>' % j for j in js)
        r = c.iq('set', "<prefs xmlns='%s' default='%s'><always>%s</always><never>%s</never></prefs>"
                 % (NS_MAM, default, jl(always), jl(never)))
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return r

    @staticmethod
    def prefs_of(r):
        p = r.find(q(NS_MAM, 'prefs'))
        lst = lambda n: sorted(j.text for j in p.find(q(NS_MAM, n)).findall(q(NS_MAM, 'jid')))
        return p.get('default'), lst('always'), lst('never')

    # -- archiving -------------------------------------------------------------

    def test_both_directions_with_recipient_ids(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        t0 = time.time()
        got = self.chat(a, b, ['one', 'two <&> "x"', 'three'])
        reply = self.chat(b, a, ['back'])
        # a message without a body is not archived
        a.send("<message to='%s' id='nobody'><active xmlns='http://jabber.org/protocol/chatstates'/></message>" % BJ)
        b.wait(lambda s: is_msg(s, id_='nobody'))
        sids = [[x.get('id') for x in m.findall(q(NS_SID, 'stanza-id')) if x.get('by') == BJ][0] for m in got]
        a_sids = [x.get('id') for x in reply[0].findall(q(NS_SID, 'stanza-id')) if x.get('by') == AJ]

        pb = self.query(b)
        self.assertEqual(pb.bodies, ['one', 'two <&> "x"', 'three', 'back'])
        self.assertEqual(pb.ids[:3], sids, 'the archive ids are the stanza-ids bob saw')
        self.assertEqual(pb.complete, 'true')
        self.assertEqual(pb.count, 4)
        self.assertIsNone(pb.first.get('index'), to_str(pb.reply))
        for (_, m, stamp) in pb.results[:3]:
            self.assertEqual(bare(m.get('from')), AJ)
            self.assertEqual(m.get('type'), 'chat')
            t = calendar.timegm(time.strptime(stamp.split('.')[0].rstrip('Z'), '%Y-%m-%dT%H:%M:%S'))
            self.assertTrue(t0 - 2 <= t <= time.time() + 2, stamp)
        self.assertEqual(bare(pb.results[3][1].get('to')), AJ)
        self.assertEqual(bare(pb.results[3][1].get('from')), BJ)

        pa = self.query(a)
        self.assertEqual(pa.bodies, ['one', 'two <&> "x"', 'three', 'back'])
        self.assertEqual(pa.ids[3], a_sids[0], 'the id of an incoming message is its stanza-id')
        self.assertEqual(len(set(pa.ids)), 4)
        # one message, one id: the sender's copy is archived under the id the recipient got
        self.assertEqual(pa.ids, pb.ids, 'both parties archive a message under one id')
        self.assertEqual(bare(pa.results[0][1].get('to')), BJ)
        self.assertEqual([r[2] for r in pa.results], [r[2] for r in pb.results])
        # and its text is stored once for both (the recipient's stanza-id is not part of it)
        self.assertEqual(s.db_rows('SELECT count(*) FROM archive_msg')[0][0], 4)
        self.assertEqual(s.db_rows('SELECT count(*) FROM archive')[0][0], 8)
        self.assertEqual(s.db_rows('SELECT count(*) FROM archive WHERE stanza IS NOT NULL')[0][0], 0)
        for (_, m, _) in pa.results + pb.results:
            self.assertIsNone(m.find(q(NS_SID, 'stanza-id')), to_str(m))

    def test_forgeries_stripped_before_the_senders_copy(self):
        # The sender's archived copy is the text both parties share: what only the server may
        # write (a stanza id in the recipient's name, a delay from the server) is gone from it.
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        a.send("<message to='%s' type='chat' id='f1'><body>forged</body>"
               "<stanza-id xmlns='%s' id='forged-id' by='%s'/>"
               "<delay xmlns='%s' from='%s' stamp='2001-01-01T00:00:00Z'/></message>"
               % (BJ, NS_SID, BJ, NS_DELAY, DOMAIN))
        got = b.wait(lambda st: is_msg(st, id_='f1'))
        self.assertEqual([x.get('id') == 'forged-id' for x in got.findall(q(NS_SID, 'stanza-id'))], [False])
        for c in (a, b):
            page = self.query(c)
            self.assertEqual(page.bodies, ['forged'])
            m = page.results[0][1]
            self.assertIsNone(m.find(q(NS_SID, 'stanza-id')), to_str(m))
            self.assertIsNone(m.find(q(NS_DELAY, 'delay')), to_str(m))

    def test_offline_recipient_archived_once(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        a.message(BJ, 'while away')
        a.sync()
        b = self.connect(s, 'bob', 'b')
        m = b.wait(lambda s: is_msg(s), what='offline message')
        sid = [x.get('id') for x in m.findall(q(NS_SID, 'stanza-id')) if x.get('by') == BJ]
        p = self.query(b)
        self.assertEqual(p.bodies, ['while away'])
        self.assertEqual(p.ids, sid)
        self.assertIsNone(p.results[0][1].find(q(NS_DELAY, 'delay')), 'the offline delay is not archived')

    def test_with_start_end(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        c = self.connect(s, 'carol', 'c')
        self.chat(a, b, ['b1', 'b2'])
        self.chat(a, c, ['c1'])
        time.sleep(1.2)
        mid = time.time()
        time.sleep(1.2)
        self.chat(a, c, ['c2'])
        self.chat(b, a, ['b3'])
        self.assertEqual(self.query(a, form(**{'with': BJ})).bodies, ['b1', 'b2', 'b3'])
        self.assertEqual(self.query(a, form(**{'with': CJ + '/c'})).bodies, ['c1', 'c2'])
        self.assertEqual(self.query(a, form(**{'with': DJ})).bodies, [])
        later = self.query(a, form(start=xep82(mid)))
        self.assertEqual(later.bodies, ['c2', 'b3'])
        self.assertEqual(later.count, 2)
        self.assertEqual(self.query(a, form(end=xep82(mid))).bodies, ['b1', 'b2', 'c1'])
        self.assertEqual(self.query(a, form(start=xep82(mid), **{'with': CJ})).bodies, ['c2'])
        # time zone offsets and fractions are XEP-0082 too
        off = time.strftime('%Y-%m-%dT%H:%M:%S.500-01:00', time.gmtime(mid - 3600))
        self.assertEqual(self.query(a, form(start=off)).bodies, ['c2', 'b3'])

    def test_paging_250(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        bodies = ['m%03d' % i for i in range(250)]
        for chunk in range(0, 250, 50):
            self.chat(a, b, bodies[chunk:chunk + 50])
        a.sync()
        # forwards with after
        seen, after, pages = [], None, 0
        while True:
            p = self.query(a, paging=rsm(50, after=after))
            pages += 1
            self.assertEqual(p.count, 250)
            self.assertEqual(len(p.results), 50)
            self.assertIsNone(p.first.get('index'), to_str(p.reply))
            seen += p.bodies
            after = p.last
            if p.complete == 'true':
                break
            self.assertLess(pages, 5, 'complete must be true on the last page')
        self.assertEqual(pages, 5)
        self.assertEqual(seen, bodies)
        ids_fwd = None
        # past the end: nothing, complete
        p = self.query(a, paging=rsm(50, after=after))
        self.assertEqual((p.bodies, p.complete, p.count), ([], 'true', 250))
        # backwards: the empty before is the last page
        seen_back, before, pages = [], '', 0
        while True:
            p = self.query(a, paging=rsm(50, before=before))
            pages += 1
            self.assertEqual(len(p.results), 50)
            self.assertIsNone(p.first.get('index'), to_str(p.reply))
            seen_back = p.bodies + seen_back
            before = p.first.text
            if p.complete == 'true':
                break
            self.assertLess(pages, 5)
        self.assertEqual(pages, 5)
        self.assertEqual(seen_back, bodies)
        # default max and the cap
        p = self.query(a)
        self.assertEqual((len(p.results), p.complete), (50, 'false'))
        p = self.query(a, paging=rsm(1000))
        self.assertEqual((p.bodies, p.complete), (bodies, 'true'))
        # max 0: the count alone
        p = self.query(a, paging=rsm(0))
        self.assertEqual((p.bodies, p.count), ([], 250))
        # bob's archive pages the same way, under the ids he saw
        pb = self.query(b, paging=rsm(100, before=''))
        self.assertEqual(pb.bodies, bodies[150:])

    # -- preferences -----------------------------------------------------------

    def test_paging_backwards_one_by_one_without_index(self):
        # A client library that ends paging when "first index + items == count" stops after the
        # newest page when the server puts an index on <first>: backwards, one item a page,
        # every one of ten messages must be reachable, and the rule must never fire early.
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        bodies = ['b%02d' % i for i in range(10)]
        self.chat(a, b, bodies)
        a.sync()
        seen, before, pages = [], '', 0
        while True:
            p = self.query(a, paging=rsm(1, before=before))
            pages += 1
            self.assertEqual(len(p.results), 1, to_str(p.reply))
            self.assertEqual(p.count, 10)
            idx = p.first.get('index')
            self.assertIsNone(idx, 'index on <first>: %s' % to_str(p.reply))
            seen = p.bodies + seen
            before = p.first.text
            if p.complete == 'true':
                break
            self.assertLess(pages, 10, 'complete must be true on the oldest page')
        self.assertEqual(pages, 10)
        self.assertEqual(seen, bodies)

    def test_page_bounded_by_bytes(self):
        # Regression: a page of 250 large messages (up to the 256 KiB stanza limit each) went out
        # at once, past the 4 MiB output bound, and the session was cut on every such query.
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        bodies = ['%02d' % i + 'x' * 200000 for i in range(24)]
        self.chat(a, b, bodies)
        a.sync()
        seen, after, pages = [], None, 0
        while True:
            p = self.query(a, paging=rsm(250, after=after))
            pages += 1
            self.assertGreater(len(p.results), 0)
            self.assertLessEqual(len(p.results), 6, 'a page of %d large items' % len(p.results))
            seen += [x[:2] for x in p.bodies]
            after = p.last
            if p.complete == 'true':
                break
            self.assertLess(pages, 24)
        self.assertEqual(seen, [x[:2] for x in bodies])
        self.assertGreater(pages, 3)
        a.sync()

    def test_prefs(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        c = self.connect(s, 'carol', 'c')
        self.assertEqual(self.prefs_of(a.iq_ok('get', "<prefs xmlns='%s'/>" % NS_MAM)), ('always', [], []))

        r = self.set_prefs(a, 'never')
        self.assertEqual(self.prefs_of(r), ('never', [], []))
        self.chat(a, b, ['never-out'])
        self.chat(b, a, ['never-in'])

        self.set_prefs(a, 'roster')
        self.chat(a, b, ['roster-out-unknown'])
        self.chat(b, a, ['roster-in-unknown'])
        self.assertEqual(a.roster_set(BJ).get('type'), 'result')
        a.sync()
        self.chat(a, b, ['roster-out-known'])
        self.chat(b, a, ['roster-in-known'])

        r = self.set_prefs(a, 'never', always=[CJ])
        self.assertEqual(self.prefs_of(r), ('never', [CJ], []))
        self.chat(a, c, ['always-carol'])
        self.chat(a, b, ['never-bob'])

        r = self.set_prefs(a, 'always', never=[BJ, CJ + '/c'])
        self.assertEqual(self.prefs_of(r), ('always', [], [BJ, CJ + '/c']))
        self.chat(b, a, ['listed-never-bob'])
        self.chat(c, a, ['listed-never-carol-resource'])
        self.chat(a, b, ['listed-never-bob-out'])
        d = self.connect(s, 'dave', 'd')
        self.chat(d, a, ['dave-always'])
        self.assertEqual(self.prefs_of(a.iq_ok('get', "<prefs xmlns='%s'/>" % NS_MAM)),
                         ('always', [], [BJ, CJ + '/c']))

        self.assertEqual(self.query(a).bodies,
                         ['roster-out-known', 'roster-in-known', 'always-carol', 'dave-always'])
        # bob's own archive follows bob's preferences
        self.assertIn('never-out', self.query(b).bodies)

        # a bad default, a bad JID
        self.assertError(a.iq('set', "<prefs xmlns='%s' default='sometimes'/>" % NS_MAM), 'bad-request')
        self.assertError(a.iq('set', "<prefs xmlns='%s' default='always'><always><jid>@@</jid></always></prefs>"
                              % NS_MAM), 'jid-malformed')

    # -- discovery and errors --------------------------------------------------

    def test_fields_and_features(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_MAM)
        x = r.find(q(NS_MAM, 'query')).find(q(NS_DATA, 'x'))
        self.assertEqual(x.get('type'), 'form')
        fields = {f.get('var'): f for f in x.findall(q(NS_DATA, 'field'))}
        self.assertEqual(set(fields), {'FORM_TYPE', 'with', 'start', 'end'})
        self.assertEqual(fields['FORM_TYPE'].findtext(q(NS_DATA, 'value')), NS_MAM)
        for to in (AJ, DOMAIN):
            r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
            feats = [f.get('var') for f in r.find(q(NS_DISCO_INFO, 'query')).findall(q(NS_DISCO_INFO, 'feature'))]
            self.assertIn(NS_MAM, feats, to)

    def test_errors(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        c = self.connect(s, 'carol', 'c')
        self.chat(a, b, ['x'])
        self.chat(c, b, ['from carol'])
        bad = lambda fields=None, paging='': self.query(a, fields, paging, expect_ok=False)
        self.assertError(bad("<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value>"
                             "</field></x>" % NS_DATA), 'bad-request')
        self.assertError(bad(form(colour='blue')), 'bad-request')
        self.assertError(bad(form(start='yesterday')), 'bad-request')
        self.assertError(bad(form(end='2020-13-01T00:00:00Z')), 'bad-request')
        self.assertError(bad(form(**{'with': 'a@b@c'})), 'bad-request')
        self.assertError(bad(paging=rsm('ten')), 'bad-request')
        self.assertError(bad(paging=rsm(5, after='no-such-id')), 'item-not-found')
        self.assertError(bad(paging=rsm(5, before='no-such-id')), 'item-not-found')
        # another user's ids are not in this archive
        bid = self.query(b).ids[1]  # carol's message: not alice's
        self.assertError(bad(paging=rsm(5, after=bid)), 'item-not-found')
        self.assertError(bad(paging=rsm(5, after='01')), 'item-not-found')
        self.assertError(bad(paging=rsm(5, after='99999999999999999999')), 'item-not-found')
        # another user's archive and preferences
        self.assertError(self.query(a, to=BJ, expect_ok=False), 'forbidden')
        self.assertError(a.iq('get', "<prefs xmlns='%s'/>" % NS_MAM, to=BJ), 'forbidden')
        # still answering afterwards
        self.assertEqual(self.query(a).bodies, ['x'])

    def test_persistence_across_restart(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        self.chat(a, b, ['before restart 1', 'before restart 2'])
        self.set_prefs(b, 'roster', always=[CJ])
        ids = self.query(a).ids
        a.logout()
        b.logout()
        s.restart()
        a = self.connect(s, 'alice', 'a2')
        b = self.connect(s, 'bob', 'b2')
        p = self.query(a)
        self.assertEqual(p.bodies, ['before restart 1', 'before restart 2'])
        self.assertEqual(p.ids, ids)
        self.assertEqual(self.prefs_of(b.iq_ok('get', "<prefs xmlns='%s'/>" % NS_MAM)), ('roster', [CJ], []))
        # roster mode survives too: alice is not in bob's roster
        self.chat(a, b, ['after restart'])
        self.assertEqual(self.query(b).bodies, ['before restart 1', 'before restart 2'])
        self.assertEqual(self.query(a).bodies, ['before restart 1', 'before restart 2', 'after restart'])

    def test_switched_off(self):
        """archive.enabled=false: no feature, queries answered as by a server without MAM
        (RFC 6120 §8.4: service-unavailable), nothing archived; switched back on, the archive
        from before is still there and the messages of the pause are not."""
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        self.chat(a, b, ['while on'])
        a.logout()
        b.logout()
        s.settings['archive.enabled'] = 'false'
        s.restart()
        a = self.connect(s, 'alice', 'a2')
        b = self.connect(s, 'bob', 'b2')
        for to in (AJ, DOMAIN):
            r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
            feats = [f.get('var') for f in r.find(q(NS_DISCO_INFO, 'query')).findall(q(NS_DISCO_INFO, 'feature'))]
            self.assertNotIn(NS_MAM, feats, to)
        self.assertError(self.query(a, expect_ok=False), 'service-unavailable')
        self.assertError(a.iq('get', "<query xmlns='%s'/>" % NS_MAM), 'service-unavailable')
        self.assertError(a.iq('get', "<prefs xmlns='%s'/>" % NS_MAM), 'service-unavailable')
        got = self.chat(a, b, ['while off'])
        self.assertEqual(got[0].findtext(q(NS_CLIENT, 'body')), 'while off')
        a.logout()
        b.logout()
        s.settings['archive.enabled'] = 'true'
        s.restart()
        a = self.connect(s, 'alice', 'a3')
        b = self.connect(s, 'bob', 'b3')
        self.assertEqual(self.query(a).bodies, ['while on'])
        self.assertEqual(self.query(b).bodies, ['while on'])


    # -- retention -------------------------------------------------------------

    def old_rows(self, s, days_ago):
        """Rows stamped days_ago in alice's archive, written with hearthd stopped."""
        stamp = int((time.time() - days_ago * 86400) * 1000)
        for i in range(2):
            key = (stamp << 21) | (127 << 14) | i  # storage.h, "Archive ids"
            s.db_exec("INSERT INTO archive_msg (seq, stanza) VALUES (?, ?)",
                      (key, "<message xmlns='jabber:client' to='%s' type='chat'><body>old %d</body></message>"
                       % (BJ, i)))
            s.db_exec("INSERT INTO archive (username, seq, with_jid, outgoing, legacy_id) "
                      "VALUES ('alice', ?, ?, 1, ?)", (key, BJ, 'old-%d-%d' % (days_ago, i)))

    def test_retention_purges_old_messages(self):
        s = self.start_server(archive__retention_days=3)
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        self.chat(a, b, ['recent'])
        a.logout()
        b.logout()
        s.stop()
        self.old_rows(s, 10)  # beyond the retention
        self.old_rows(s, 1)   # within it
        s.start()
        a = self.connect(s, 'alice', 'a2')
        b = self.connect(s, 'bob', 'b2')
        self.chat(a, b, ['new'])  # archive work arms the hourly purge, which runs at once
        want = ['old 0', 'old 1', 'recent', 'new']  # in the order of their time
        last = [None]

        def purged():
            last[0] = self.query(a).bodies
            return last[0] == want
        try:
            wait_for(purged, 5, 'the purge', interval=0.1)
        except AssertionError:
            raise AssertionError('archive holds %r, expected %r' % (last[0], want))
        s.wait_log(r'archive retention: 3 days')

    def test_no_retention_keeps_everything(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        a.logout()
        s.stop()
        self.old_rows(s, 4000)
        s.start()
        a = self.connect(s, 'alice', 'a2')
        b = self.connect(s, 'bob', 'b')
        self.chat(a, b, ['new'])
        a.sync()
        self.assertEqual(self.query(a).bodies, ['old 0', 'old 1', 'new'])


if __name__ == '__main__':
    main()
