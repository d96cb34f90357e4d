"""Rosters (RFC 6121 section 2) and roster versioning (XEP-0237 / RFC 6121
2.6): get, set, update, remove, pushes to interested resources only, error
cases, limits, persistence across restarts, version ids."""

import re

from hearth import DOMAIN, q, to_str, main
from imlib import (NS_ROSTER, NS_ROSTERVER, IMTestCase, bare, err, is_push, note, parse_items,
                   push_item, roster_query)

BOB = 'bob@localhost'
CAROL = 'carol@localhost'
DAVE = 'dave@localhost'


def apply_pushes(items, pushes):
    """Apply roster pushes to a {jid: item} dict (a client's cache)."""
    out = dict(items)
    for p in pushes:
        it = push_item(p)
        if it['subscription'] == 'remove':
            out.pop(it['jid'], None)
        else:
            out[it['jid']] = it
    return out


def strip(items):
    return {j: (i['name'], i['subscription'], i['ask'], tuple(i['groups'])) for j, i in items.items()}


class RosterTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def test_empty_roster(self):
        a = self.connect(self.s, 'alice', 'a', roster=False, presence=False)
        r = a.roster_get()
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertIn(r.get('to'), (None, a.jid), to_str(r))
        self.assertIn(r.get('from'), (None, 'alice@localhost'), to_str(r))
        qy = roster_query(r)
        self.assertIsNotNone(qy, 'roster result without <query/>: %s' % to_str(r))
        self.assertEqual(list(qy), [], to_str(r))

    def test_rosterver_feature_after_auth(self):
        a = self.connect(self.s, 'alice', 'a', roster=False, presence=False)
        self.assertIsNotNone(a.features.find(q(NS_ROSTERVER, 'ver')),
                             'post-auth features lack <ver xmlns=%s/>: %s' % (NS_ROSTERVER, to_str(a.features)))

    def test_set_pushes_to_interested_resources_only(self):
        a1 = self.connect(self.s, 'alice', 'one')
        a2 = self.connect(self.s, 'alice', 'two')
        a3 = self.connect(self.s, 'alice', 'quiet', roster=False, presence=False)  # never asked for the roster
        b = self.connect(self.s, 'bob', 'b')
        r = a1.roster_set(BOB, name='Bob the Builder', groups=['Friends', 'Work'])
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(len(r), 0, 'roster set result has a payload: %s' % to_str(r))
        for c in (a1, a2):
            it = self.wait_push(c, BOB)
            self.assertEqual(it, {'jid': BOB, 'name': 'Bob the Builder', 'subscription': 'none', 'ask': None,
                                  'approved': None, 'groups': ['Friends', 'Work']})
        a3.expect_none(is_push, 'roster push to a resource that never requested the roster')
        b.expect_none(is_push, 'roster push to another user')
        self.assertEqual(strip(a2.roster()), {BOB: ('Bob the Builder', 'none', None, ('Friends', 'Work'))})
        # a set does not subscribe: bob got no presence of any kind
        b.expect_none(lambda s: s.tag.endswith('presence') and bare(s.get('from')) == 'alice@localhost', 'presence caused by a roster set')

    def test_update_and_remove(self):
        a1 = self.connect(self.s, 'alice', 'one')
        a2 = self.connect(self.s, 'alice', 'two')
        self.assertEqual(a1.roster_set(BOB, 'Bob', ['A']).get('type'), 'result')
        self.wait_push(a2, BOB)
        r = a1.roster_set(BOB, 'Robert', ['B', 'C'])
        self.assertEqual(r.get('type'), 'result', to_str(r))
        it = self.wait_push(a2, BOB)
        self.assertEqual((it['name'], it['groups']), ('Robert', ['B', 'C']))
        self.assertEqual(strip(a1.roster()), {BOB: ('Robert', 'none', None, ('B', 'C'))})
        # removing the name and the groups
        r = a1.roster_set(BOB)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        it = self.wait_push(a2, BOB)
        self.assertIn(it['name'], (None, ''))
        self.assertEqual(it['groups'], [])
        # remove
        r = a1.roster_remove(BOB)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for c in (a1, a2):
            s = c.wait(lambda s: is_push(s, BOB) and push_item(s)['subscription'] == 'remove',
                       what='push of the removal')
            self.check_push(s, 'alice@localhost')
        self.assertEqual(a1.roster(), {})

    def test_remove_unknown_item(self):
        a = self.connect(self.s, 'alice', 'a')
        r = a.roster_remove('nobody@localhost')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r)[1], 'item-not-found', to_str(r))
        a.expect_none(is_push, 'push for a failed removal')

    def test_subscription_attribute_ignored_on_set(self):
        # RFC 6121 2.1.2.5: values other than "remove" in a set are ignored
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        for sub in ('both', 'to', 'from'):
            r = a.roster_set(BOB, extra="subscription='%s'" % sub)
            self.assertEqual(r.get('type'), 'result', to_str(r))
            it = self.wait_push(a, BOB)
            self.assertEqual((it['subscription'], it['ask']), ('none', None), 'after subscription=%s' % sub)
        r = a.roster_set(CAROL, extra="ask='subscribe'")
        if r.get('type') == 'result':
            it = self.wait_push(a, CAROL)
            self.assertIsNone(it['ask'], 'a client set ask=subscribe without a subscribe presence')
        self.assertEqual(a.view(BOB), ('none', None))
        b.expect_none(lambda s: s.tag.endswith('presence') and bare(s.get('from')) == 'alice@localhost', 'presence after forged subscription attrs')
        # and bob still does not receive alice's presence
        a.presence(status='visible?')
        a.sync()
        b.expect_none(lambda s: s.tag.endswith('presence') and bare(s.get('from')) == 'alice@localhost', 'presence to a non-subscriber')

    def test_set_errors(self):
        a = self.connect(self.s, 'alice', 'a')
        cases = [
            ('two items', "<query xmlns='%s'><item jid='%s'/><item jid='%s'/></query>" % (NS_ROSTER, BOB, CAROL),
             ('bad-request',)),
            ('no item', "<query xmlns='%s'/>" % NS_ROSTER, ('bad-request',)),
            ('no jid', "<query xmlns='%s'><item name='x'/></query>" % NS_ROSTER, ('bad-request', 'jid-malformed')),
            ('duplicate group', "<query xmlns='%s'><item jid='%s'><group>G</group><group>G</group></item></query>"
             % (NS_ROSTER, BOB), ('bad-request',)),
            ('empty group', "<query xmlns='%s'><item jid='%s'><group/></item></query>" % (NS_ROSTER, BOB),
             ('not-acceptable',)),
            ('bad jid', "<query xmlns='%s'><item jid='a@b@localhost'/></query>" % NS_ROSTER,
             ('bad-request', 'jid-malformed')),
            ('empty jid', "<query xmlns='%s'><item jid=''/></query>" % NS_ROSTER, ('bad-request', 'jid-malformed')),
            ('long name', "<query xmlns='%s'><item jid='%s' name='%s'/></query>" % (NS_ROSTER, BOB, 'n' * 1024),
             ('not-acceptable',)),
            ('long name multibyte', "<query xmlns='%s'><item jid='%s' name='%s'/></query>"
             % (NS_ROSTER, BOB, '\u00e9' * 512), ('not-acceptable',)),  # 1024 bytes, 512 characters
            ('101 groups', "<query xmlns='%s'><item jid='%s'>%s</item></query>"
             % (NS_ROSTER, BOB, ''.join('<group>g%d</group>' % i for i in range(101))), ('not-acceptable',)),
        ]
        for what, payload, conds in cases:
            r = a.iq('set', payload)
            self.assertEqual(r.get('type'), 'error', '%s: %s' % (what, to_str(r)))
            self.assertIn(err(r)[1], conds, '%s: %s' % (what, to_str(r)))
        a.expect_none(is_push, 'push after a refused set')
        self.assertEqual(a.roster(), {})
        # the limits themselves are allowed
        r = a.iq('set', "<query xmlns='%s'><item jid='%s' name='%s'>%s</item></query>"
                 % (NS_ROSTER, BOB, 'n' * 1023, ''.join('<group>g%d</group>' % i for i in range(100))))
        self.assertEqual(r.get('type'), 'result', 'name of 1023 bytes and 100 groups: %s' % to_str(r)[:300])
        it = self.wait_push(a, BOB)
        self.assertEqual((len(it['name']), len(it['groups'])), (1023, 100))

    def test_unicode_and_prepared_jid(self):
        a = self.connect(self.s, 'alice', 'a')
        r = a.roster_set('BOB@LocalHost', name='郑西风 "Z" <&>', groups=['朋友', 'Ärger'])
        self.assertEqual(r.get('type'), 'result', to_str(r))
        it = self.wait_push(a, BOB)  # stored under the prepared JID
        self.assertEqual((it['name'], it['groups']), ('郑西风 "Z" <&>', sorted(['朋友', 'Ärger'])))
        self.assertEqual(list(a.roster()), [BOB])

    def test_other_users_roster_refused(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        self.assertEqual(b.roster_set(CAROL, 'C').get('type'), 'result')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_ROSTER, to=BOB)
        self.assertEqual(r.get('type'), 'error', 'alice read bob\'s roster: %s' % to_str(r))
        self.assertIn(err(r)[1], ('forbidden', 'service-unavailable', 'not-allowed', 'not-authorized'), to_str(r))
        r = a.iq('set', "<query xmlns='%s'><item jid='%s'/></query>" % (NS_ROSTER, DAVE), to=BOB)
        self.assertEqual(r.get('type'), 'error', 'alice changed bob\'s roster: %s' % to_str(r))
        self.assertIn(err(r)[1], ('forbidden', 'service-unavailable', 'not-allowed', 'not-authorized'), to_str(r))
        self.assertEqual(list(b.roster()), [CAROL])
        b.expect_none(lambda s: is_push(s, DAVE), 'push from a forged set')
        # to the own bare JID is the same as no 'to'
        r = a.iq('get', "<query xmlns='%s'/>" % NS_ROSTER, to='alice@localhost')
        self.assertEqual(r.get('type'), 'result', to_str(r))

    def test_persists_across_restart(self):
        a = self.connect(self.s, 'alice', 'a')
        a.roster_set(BOB, 'Bob', ['x', 'y'])
        a.roster_set(CAROL, '卡罗尔')
        a.roster_set(DAVE)
        a.roster_remove(DAVE)
        before = strip(a.roster())
        a.logout()
        self.s.restart()
        a = self.connect(self.s, 'alice', 'again')
        self.assertEqual(strip(a.roster()), before)
        self.assertEqual(before, {BOB: ('Bob', 'none', None, ('x', 'y')), CAROL: ('卡罗尔', 'none', None, ())})


class RosterLimitTest(IMTestCase):
    def test_max_items(self):
        s = self.start_server(roster__max_items=3)
        a = self.connect(s, 'alice', 'a')
        a2 = self.connect(s, 'alice', 'a2')
        for i in range(3):
            r = a.roster_set('c%d@localhost' % i, 'C%d' % i)
            self.assertEqual(r.get('type'), 'result', to_str(r))
        a2.wait_n(is_push, 3, what='pushes of the first three items')
        r = a.roster_set('c3@localhost', 'one too many')
        self.assertEqual(r.get('type'), 'error', 'a fourth item was accepted with roster.max_items=3')
        self.assertIn(err(r)[1], ('policy-violation', 'not-acceptable', 'resource-constraint'), to_str(r))
        a2.expect_none(is_push, 'push for the refused item')
        self.assertEqual(sorted(a.roster()), ['c0@localhost', 'c1@localhost', 'c2@localhost'])
        # changing an existing item is not adding one
        r = a.roster_set('c1@localhost', 'renamed', ['g'])
        self.assertEqual(r.get('type'), 'result', to_str(r))
        # a subscription request to a fourth contact cannot add an item either
        a.sub('subscribe', 'c4@localhost')
        a.sync()
        self.assertNotIn('c4@localhost', a.roster())
        # after a removal there is room again
        self.assertEqual(a.roster_remove('c0@localhost').get('type'), 'result')
        r = a.roster_set('c3@localhost', 'now it fits')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(sorted(a.roster()), ['c1@localhost', 'c2@localhost', 'c3@localhost'])


class RosterVersionTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def full(self, r):
        qy = roster_query(r)
        self.assertIsNotNone(qy, to_str(r))
        ver = qy.get('ver')
        self.assertIsNotNone(ver, 'roster result without ver although versioning is advertised: %s' % to_str(r))
        self.assertRegex(ver, r'^\d+$', 'ver is not a decimal string')
        return ver, parse_items(qy)

    def get_with_ver(self, c, ver, base_items):
        """Roster get with ver; accepts both shapes of RFC 6121 2.6.3. Returns
        (shape, resulting roster, final ver)."""
        c.take()
        r = c.roster_get(ver=ver)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        c.sync()
        pushes = c.take(is_push)
        qy = roster_query(r)
        if qy is not None:
            self.assertEqual(pushes, [], 'pushes as well as a full roster: %s' % c.dump(pushes))
            v, items = self.full(r)
            return 'full', items, v
        self.assertEqual(len(r), 0, to_str(r))
        vers = []
        for p in pushes:
            self.check_push(p, bare(c.jid))
            pv = roster_query(p).get('ver')
            self.assertIsNotNone(pv, 'versioned push without ver: %s' % to_str(p))
            vers.append(pv)
        return 'pushes', apply_pushes(base_items, pushes), (vers[-1] if vers else ver)

    def test_versions(self):
        a = self.connect(self.s, 'alice', 'a', roster=False)
        r = a.roster_get(ver='')
        v0, items = self.full(r)
        self.assertEqual(items, {})
        # every change gives a push with a new ver; the next get reports it
        self.assertEqual(a.roster_set(BOB, 'Bob').get('type'), 'result')
        p = a.wait(lambda s: is_push(s, BOB))
        v1 = roster_query(p).get('ver')
        self.assertIsNotNone(v1, 'push without ver: %s' % to_str(p))
        self.assertRegex(v1, r'^\d+$')
        self.assertNotEqual(v1, v0)
        self.assertEqual(self.full(a.roster_get(ver=''))[0], v1)
        # the current version: an empty result, nothing pushed
        a.take()
        r = a.roster_get(ver=v1)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(len(r), 0, 'roster get with the current ver must give an empty result: %s' % to_str(r))
        a.expect_none(is_push, 'push after a get with the current version')

    def test_older_version(self):
        a = self.connect(self.s, 'alice', 'a', roster=False)
        self.full(a.roster_get(ver=''))
        a.roster_set(BOB, 'Bob', ['g1'])
        a.roster_set(CAROL, 'Carol')
        v2, base = self.full(a.roster_get(ver=''))
        a.roster_set(DAVE, 'Dave')
        a.roster_remove(BOB)
        a.roster_set(CAROL, 'Caroline', ['g2'])
        a.sync()
        v5, now = self.full(a.roster_get(ver=''))
        self.assertNotEqual(v5, v2)
        a.take()
        shape, got, ver = self.get_with_ver(a, v2, base)
        note('roster get with an older ver answered with: %s' % shape)
        self.assertEqual(strip(got), strip(now))
        self.assertEqual(ver, v5)
        # and the client is now current
        r = a.roster_get(ver=v5)
        self.assertEqual(len(r), 0, to_str(r))

    def test_unknown_version(self):
        a = self.connect(self.s, 'alice', 'a', roster=False)
        a.roster_set(BOB, 'Bob')
        a.roster_set(CAROL, 'Carol')
        v, now = self.full(a.roster_get(ver=''))
        for bogus in ('999999999', 'not-a-version'):
            shape, got, ver = self.get_with_ver(a, bogus, {})
            self.assertEqual(strip(got), strip(now), 'get with ver=%r' % bogus)
            self.assertEqual(ver, v)

    def test_other_resources_pushed_with_ver(self):
        a1 = self.connect(self.s, 'alice', 'one')
        a2 = self.connect(self.s, 'alice', 'two')
        b = self.connect(self.s, 'bob', 'b')
        a1.roster_set(CAROL, 'C')
        p1 = a1.wait(lambda s: is_push(s, CAROL))
        p2 = a2.wait(lambda s: is_push(s, CAROL))
        self.assertEqual(roster_query(p1).get('ver'), roster_query(p2).get('ver'))
        b.expect_none(is_push)

    def test_version_survives_restart(self):
        a = self.connect(self.s, 'alice', 'a', roster=False)
        a.roster_set(BOB, 'Bob')
        v, items = self.full(a.roster_get(ver=''))
        a.logout()
        self.s.restart()
        a = self.connect(self.s, 'alice', 'a', roster=False)
        shape, got, ver = self.get_with_ver(a, v, items)
        self.assertEqual(strip(got), strip(items))
        self.assertEqual(ver, v)
        if shape == 'full':
            note('after a restart the current ver gave the full roster (allowed by RFC 6121 2.6.3)')
        a.roster_set(CAROL)
        v2, _ = self.full(a.roster_get(ver=''))
        self.assertNotEqual(v2, v, 'a change after the restart reused the version id')


class RosterSizeTest(IMTestCase):
    """Regression: 100 items each within the per-field limits (1,023-byte name, 100 groups
    of 1,023 bytes) made a roster result past the 4 MiB output bound, and every later roster
    fetch ended the session, at every login. The roster is now bounded by the size of its
    result (roster.max_size)."""

    def test_roster_bounded_by_result_size(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a', roster=False, presence=False)
        name = 'n' * 1023
        groups = ['%03d' % g + 'g' * 1020 for g in range(100)]
        accepted = refused = 0
        for i in range(100):
            r = a.roster_set('contact%03d@localhost' % i, name=name, groups=groups)
            if r.get('type') == 'result':
                accepted += 1
                continue
            self.assertEqual(err(r)[1], 'policy-violation', to_str(r)[-300:])
            refused += 1
        self.assertGreater(accepted, 0)
        self.assertGreater(refused, 0, 'a roster of 10 MB was accepted')
        a.take()
        # the whole roster still comes back, and the session lives on
        for _ in range(3):
            r = a.roster_get(timeout=15)
            self.assertEqual(r.get('type'), 'result', to_str(r)[:300])
            self.assertEqual(len(roster_query(r)), accepted)
        a.sync()
        # a smaller item still fits where a large one did not; shrinking an item is allowed
        r = a.roster_set('contact000@localhost', name='small')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        a.logout()
        b = self.connect(s, 'alice', 'again', roster=False, presence=False)
        r = b.roster_get(timeout=15)
        self.assertEqual(r.get('type'), 'result')
        b.sync()

    def test_limit_configurable(self):
        s = self.start_server(roster__max_size=16384)
        a = self.connect(s, 'alice', 'a', roster=False, presence=False)
        n = 0
        while True:
            r = a.roster_set('c%d@localhost' % n, name='x' * 500)
            if r.get('type') != 'result':
                self.assertEqual(err(r)[1], 'policy-violation', to_str(r)[-300:])
                break
            n += 1
            self.assertLess(n, 100)
        self.assertTrue(20 <= n <= 32, n)  # 16 KiB of items of about 600 bytes each
        # presence subscriptions that would add an item are refused the same way
        a.send("<presence type='subscribe' to='zz%s@localhost' id='sub1'/>" % ('z' * 1000))
        e = a.wait(lambda st: st.get('id') == 'sub1' and st.get('type') == 'error')
        self.assertEqual(err(e)[1], 'policy-violation', to_str(e)[-300:])


if __name__ == '__main__':
    main()
