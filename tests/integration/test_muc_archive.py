"""A room's archive (XEP-0313 on the room's JID), moderated retraction (XEP-0425) and occupant
ids (XEP-0421) against a live hearthd: a moderator, occupants, an outsider and a user who joins
later and pages back; semi-anonymous and non-anonymous rooms; archiving switched off; the archive
and its tombstones across a restart; and bad input (malformed queries and forms, unknown ids,
retraction by a non-moderator, forged occupant ids and real JIDs)."""

import base64
import hashlib
import re

from hearth import DOMAIN, NS_CLIENT, NS_DISCO_INFO, main, q, to_str, xml_escape
from imlib import NS_DELAY, NS_SID, err, is_msg, is_pres
from test_muc import NS_MUC, NS_MUC_USER, NS_XDATA, MucTestCase, codes, features, field_xml

NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_OCCID = 'urn:xmpp:occupant-id:0'
NS_MODERATE = 'urn:xmpp:message-moderate:1'
NS_RETRACT = 'urn:xmpp:message-retract:1'
NS_MODERATE0 = 'urn:xmpp:message-moderate:0'
NS_RETRACT0 = 'urn:xmpp:message-retract:0'
NS_FASTEN = 'urn:xmpp:fasten:0'
NS_VCARD = 'vcard-temp'

PERSISTENT = {'muc#roomconfig_persistentroom': True}


def occid(s):
    """The occupant-id the room put on s (None when none); fails on two of them."""
    ids = s.findall(q(NS_OCCID, 'occupant-id'))
    assert len(ids) <= 1, to_str(s)
    return ids[0].get('id') if ids else None


def sid_of(s, room):
    for e in s.findall(q(NS_SID, 'stanza-id')):
        if e.get('by') == room:
            return e.get('id')
    return None


def mam_form(fields):
    inner = field_xml('FORM_TYPE', NS_MAM)
    for k, v in fields.items():
        inner += field_xml(k, v)
    return "<x xmlns='%s' type='submit'>%s</x>" % (NS_XDATA, inner)


def rsm(max_=None, after=None, before=None, extra=''):
    inner = ''
    if max_ is not None:
        inner += '<max>%s</max>' % max_
    if after is not None:
        inner += '<after>%s</after>' % xml_escape(after)
    if before is not None:
        inner += '<before>%s</before>' % xml_escape(before) if before else '<before/>'
    return "<set xmlns='%s'>%s%s</set>" % (NS_RSM, inner, extra)


class Page:
    def __init__(self, reply, results):
        self.reply = reply
        self.results = results  # (archive id, forwarded message, delay stamp)
        fin = reply.find(q(NS_MAM, 'fin'))
        self.complete = fin is not None and fin.get('complete') == 'true'
        s = fin.find(q(NS_RSM, 'set')) if fin is not None else None
        self.first = s.findtext(q(NS_RSM, 'first')) if s is not None else None
        self.last = s.findtext(q(NS_RSM, 'last')) if s is not None else None
        self.count = int(s.findtext(q(NS_RSM, 'count'))) if s is not None else None

    def bodies(self):
        return [m.findtext(q(NS_CLIENT, 'body')) for _, m, _ in self.results]

    def ids(self):
        return [i for i, _, _ in self.results]


class ArchiveTestCase(MucTestCase):

    def query(self, c, room, form=None, set_='', qid='q1'):
        """One MAM query: the IQ reply and, on success, its results (checked to be addressed
        and wrapped as XEP-0313 says)."""
        payload = "<query xmlns='%s' queryid='%s'>%s%s</query>" % (
            NS_MAM, qid, mam_form(form) if form is not None else '', set_)
        r = c.iq('set', payload, to=room)
        res = []
        for m in c.take(lambda s: is_msg(s) and s.find(q(NS_MAM, 'result')) is not None):
            self.assertEqual(m.get('from'), room, to_str(m))
            self.assertEqual(m.get('to'), c.jid, to_str(m))
            result = m.find(q(NS_MAM, 'result'))
            self.assertEqual(result.get('queryid'), qid)
            fwd = result.find(q(NS_FORWARD, 'forwarded'))
            inner = fwd.find(q(NS_CLIENT, 'message'))
            self.assertIsNotNone(inner, to_str(m))
            stamp = fwd.find(q(NS_DELAY, 'delay')).get('stamp')
            res.append((result.get('id'), inner, stamp))
        return r, res

    def page(self, c, room, **kw):
        r, res = self.query(c, room, **kw)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return Page(r, res)

    def talk(self, room, pairs):
        """Each (client, nick, body) says body; every occupant client sees it. Returns the
        stanza-ids the room gave, in order."""
        sids = []
        for c, nick, body in pairs:
            self.say(c, room, body)
            m = self.got_groupchat(c, room, nick, body)
            sids.append(sid_of(m, room))
            self.assertIsNotNone(sids[-1], to_str(m))
        return sids


class TestArchive(ArchiveTestCase):

    def test_disco_and_paging_by_a_later_user(self):
        room, a, b, c = self.three('arch', PERSISTENT)
        f = features(b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room))
        for want in (NS_MAM, NS_OCCID, NS_MODERATE, NS_SID):
            self.assertIn(want, f)
        bodies = ['m%d' % i for i in range(7)]
        sids = self.talk(room, [(a if i % 2 == 0 else b, 'Alice' if i % 2 == 0 else 'Bob', x)
                                for i, x in enumerate(bodies)])
        self.settle(a, b, c)
        # dave was never there: not an occupant, not a member
        d = self.client('dave')
        r, res = self.query(d, room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        self.assertEqual(res, [])
        self.enter(d, room, 'Dave')
        d.take()
        # the whole archive at once, oldest first, ids the stanza-ids everyone saw
        p = self.page(d, room)
        self.assertEqual(p.bodies(), bodies)
        self.assertEqual(p.ids(), sids)
        self.assertTrue(p.complete)
        self.assertEqual(p.count, 7)
        self.assertEqual((p.first, p.last), (sids[0], sids[-1]))
        for (_, m, stamp), i in zip(p.results, range(7)):
            self.assertEqual(m.get('from'), '%s/%s' % (room, 'Alice' if i % 2 == 0 else 'Bob'))
            self.assertEqual(m.get('type'), 'groupchat')
            self.assertIsNotNone(occid(m))
            self.assertRegex(stamp, r'Z$')
        # backwards from the end, three at a time, as a client scrolling up does
        got, before = [], ''
        for _ in range(5):
            p = self.page(d, room, set_=rsm(3, before=before))
            self.assertEqual(p.count, 7)
            got = p.bodies() + got
            if p.complete:
                break
            self.assertEqual(len(p.results), 3)
            before = p.first
        self.assertTrue(p.complete)
        self.assertEqual(got, bodies)
        # forwards after an id
        p = self.page(d, room, set_=rsm(2, after=sids[2]))
        self.assertEqual(p.bodies(), ['m3', 'm4'])
        self.assertFalse(p.complete)
        p = self.page(d, room, set_=rsm(10, after=sids[4]))
        self.assertEqual(p.bodies(), ['m5', 'm6'])
        self.assertTrue(p.complete)
        # between two ids
        p = self.page(d, room, set_=rsm(10, after=sids[1], before=sids[5]))
        self.assertEqual(p.bodies(), ['m2', 'm3', 'm4'])
        # max 0: the count only
        p = self.page(d, room, set_=rsm(0))
        self.assertEqual((p.results, p.count, p.complete), ([], 7, False))
        # with an occupant JID: what that nick said
        p = self.page(d, room, form={'with': '%s/Bob' % room})
        self.assertEqual(p.bodies(), ['m1', 'm3', 'm5'])
        self.assertEqual(p.count, 3)
        # start and end (XEP-0082)
        p = self.page(d, room, form={'start': '2999-01-01T00:00:00Z'})
        self.assertEqual((p.results, p.count, p.complete), ([], 0, True))
        p = self.page(d, room, form={'end': '2000-01-01T00:00:00Z'})
        self.assertEqual(p.count, 0)
        p = self.page(d, room, form={'start': '2000-01-01T00:00:00Z', 'end': '2999-01-01T00:00:00.000+02:00'})
        self.assertEqual(p.count, 7)
        # the form a query takes
        r = d.iq_ok('get', "<query xmlns='%s'/>" % NS_MAM, to=room)
        x = r.find('%s/%s' % (q(NS_MAM, 'query'), q(NS_XDATA, 'x')))
        self.assertEqual({f.get('var') for f in x.findall(q(NS_XDATA, 'field'))},
                         {'FORM_TYPE', 'with', 'start', 'end'})

    def test_who_may_query(self):
        a, b, e = self.client('alice'), self.client('bob'), self.client('eve')
        room = self.create(a, 'club', 'Alice', {'muc#roomconfig_persistentroom': True,
                                               'muc#roomconfig_membersonly': True})
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='bob@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        self.talk(room, [(a, 'Alice', 'members only')])
        # bob is a member, not in the room: may read; eve may not; an outcast may not
        self.assertEqual(self.page(b, room).bodies(), ['members only'])
        r, res = self.query(e, room)
        self.assertEqual((err(r), res), (('auth', 'forbidden'), []))
        self.assertEqual(self.admin(a, room, "<item affiliation='outcast' jid='bob@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        r, res = self.query(b, room)
        self.assertEqual((err(r), res), (('auth', 'forbidden'), []))
        # an open room: an occupant may; once gone, no longer
        room2 = self.create(a, 'open', 'Alice', PERSISTENT)
        self.enter(e, room2, 'Eve')
        self.talk(room2, [(e, 'Eve', 'hello')])
        self.assertEqual(self.page(e, room2).bodies(), ['hello'])
        e.send("<presence to='%s/Eve' type='unavailable'/>" % room2)
        self.pres_from(e, room2, 'Eve', type_='unavailable', code=110)
        r, _ = self.query(e, room2)
        self.assertEqual(err(r), ('auth', 'forbidden'))

    def test_real_jids_only_to_those_who_may_see_them(self):
        room, a, b, c = self.three('semi', PERSISTENT)  # semi-anonymous: the default
        self.talk(room, [(b, 'Bob', 'from bob')])
        self.settle(a, b, c)

        def real_jids(p):
            out = []
            for _, m, _ in p.results:
                x = m.find(q(NS_MUC_USER, 'x'))
                out.append(None if x is None else x.find(q(NS_MUC_USER, 'item')).get('jid'))
            return out

        self.assertEqual(real_jids(self.page(c, room)), [None])  # carol: a participant
        self.assertEqual(real_jids(self.page(a, room)), ['bob@' + DOMAIN])  # alice: the owner
        # 'with' a real JID: only for those who see them
        r, res = self.query(c, room, form={'with': 'bob@' + DOMAIN})
        self.assertEqual((err(r), res), (('auth', 'forbidden'), []))
        p = self.page(a, room, form={'with': 'bob@' + DOMAIN})
        self.assertEqual(p.bodies(), ['from bob'])
        # non-anonymous: everyone sees them
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_whois': 'anyone'}).get('type'), 'result')
        self.assertEqual(real_jids(self.page(c, room)), ['bob@' + DOMAIN])
        # a forged muc#user <x/> in a groupchat message does not reach the archive
        c.send("<message to='%s' type='groupchat'><body>forged</body><x xmlns='%s'><item jid='dave@%s'/></x>"
               "</message>" % (room, NS_MUC_USER, DOMAIN))
        m = self.got_groupchat(b, room, 'Carol', 'forged')
        self.assertIsNone(m.find(q(NS_MUC_USER, 'x')), to_str(m))
        self.assertEqual(real_jids(self.page(b, room))[-1], 'carol@' + DOMAIN)

    def test_archiving_off_and_temporary_rooms(self):
        room, a, b, c = self.three('quiet', {'muc#roomconfig_persistentroom': True,
                                             'muc#roomconfig_enablearchiving': False})
        self.assertEqual(self.config_values(a, room)['muc#roomconfig_enablearchiving'], ['0'])
        self.talk(room, [(b, 'Bob', 'not kept')])
        f = features(b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room))
        self.assertNotIn(NS_MAM, f)
        self.assertIn(NS_OCCID, f)
        r, res = self.query(b, room)
        self.assertEqual((err(r), res), (('cancel', 'service-unavailable'), []))
        # switched on: advertised and answered, from then on
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_enablearchiving': True}).get('type'),
                         'result')
        self.assertIn(NS_MAM, features(b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)))
        self.talk(room, [(b, 'Bob', 'kept')])
        self.assertEqual(self.page(c, room).bodies(), ['kept'])
        # a temporary room keeps no archive
        tmp = self.create(a, 'tmp', 'Alice')
        self.assertNotIn(NS_MAM, features(a.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=tmp)))
        r, _ = self.query(a, tmp)
        self.assertEqual(err(r), ('cancel', 'service-unavailable'))

    def test_archive_and_occupant_ids_survive_restart(self):
        room, a, b, c = self.three('kept', PERSISTENT)
        sids = self.talk(room, [(a, 'Alice', 'one'), (b, 'Bob', 'two')])
        before = occid(self.page(c, room).results[1][1])
        self.settle(a, b, c)
        self.srv.restart()
        a, b = self.client('alice'), self.client('bob')
        s = self.enter(b, room, 'Bob')
        self.assertEqual(occid(s), before)  # the same id for bob, after a restart
        p = self.page(b, room)
        self.assertEqual((p.bodies(), p.ids()), (['one', 'two'], sids))
        self.assertEqual(self.page(b, room, set_=rsm(5, after=sids[0])).bodies(), ['two'])

    def history(self, c, room, nick, n):
        """Join as nick and return the bodies of the history the room sends (n messages)."""
        self.join(c, room, nick)
        hist = c.wait_n(lambda s: is_msg(s, type_='groupchat') and s.find(q(NS_DELAY, 'delay')) is not None,
                        n, what='history')
        self.subject_of(c, room)
        c.expect_none(lambda s: is_msg(s, type_='groupchat') and s.find(q(NS_CLIENT, 'body')) is not None)
        return [h.findtext(q(NS_CLIENT, 'body')) for h in hist]

    def test_archive_holds_what_was_said_while_archiving(self):
        # switched on by the owner: the archive starts then; the history keeps all
        room, a, b, c = self.three('late', {'muc#roomconfig_persistentroom': True,
                                            'muc#roomconfig_enablearchiving': False})
        self.talk(room, [(a, 'Alice', 'a'), (b, 'Bob', 'b')])
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_enablearchiving': True}).get('type'),
                         'result')
        sids = self.talk(room, [(b, 'Bob', 'c')])
        p = self.page(c, room)
        self.assertEqual((p.bodies(), p.ids()), (['c'], sids))
        self.assertEqual(self.history(self.client('dave'), room, 'Dave', 3), ['a', 'b', 'c'])
        # a room stored before archives (its document holds its history and no archiving
        # field): archived from now on; its history, from the document and the log, in order
        room2 = self.create(a, 'older', 'Alice', {'muc#roomconfig_persistentroom': True,
                                                  'muc#roomconfig_enablearchiving': False})
        self.enter(b, room2, 'Bob')
        self.talk(room2, [(a, 'Alice', 'x'), (b, 'Bob', 'y')])
        for x, nick in ((a, 'Alice'), (b, 'Bob')):
            x.send("<presence to='%s/%s' type='unavailable'/>" % (room2, nick))
            self.pres_from(x, room2, nick, type_='unavailable', code=110)
        self.settle(a, b)
        self.srv.stop()
        (doc,) = self.srv.db_rows("SELECT xml FROM documents WHERE kind = 'muc.room' AND key = ?", (room2,))[0]
        old = re.sub(r"<field[^>]*var=.muc#roomconfig_enablearchiving.[^>]*>.*?</field>", '', doc)
        self.assertNotEqual(old, doc)
        self.assertIn('<hist', old)
        self.srv.db_exec("UPDATE documents SET xml = ? WHERE kind = 'muc.room' AND key = ?", (old, room2))
        self.srv.start()
        d = self.client('dave')
        self.assertEqual(self.history(d, room2, 'Dave', 2), ['x', 'y'])
        self.assertEqual(self.page(d, room2).count, 0)
        z = self.talk(room2, [(d, 'Dave', 'z')])
        d.close()
        self.srv.restart()
        e = self.client('eve')
        self.assertEqual(self.history(e, room2, 'Eve', 3), ['x', 'y', 'z'])
        p = self.page(e, room2)
        self.assertEqual((p.bodies(), p.ids()), (['z'], z))

    def test_bad_queries(self):
        room, a, b, c = self.three('bad', PERSISTENT)
        sids = self.talk(room, [(a, 'Alice', 'x')])

        def check(cond, **kw):
            r, res = self.query(b, room, **kw)
            self.assertEqual(err(r), cond, to_str(r))
            self.assertEqual(res, [])

        bad_form = "<x xmlns='%s' type='form'>%s</x>" % (NS_XDATA, field_xml('FORM_TYPE', NS_MAM))
        r = b.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MAM, bad_form), to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        wrong_type = "<x xmlns='%s' type='submit'>%s</x>" % (NS_XDATA, field_xml('FORM_TYPE', 'urn:x'))
        r = b.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MAM, wrong_type), to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        check(('modify', 'bad-request'), form={'nonsense': 'x'})
        check(('modify', 'bad-request'), form={'start': 'yesterday'})
        check(('modify', 'bad-request'), form={'end': '2020-13-01T00:00:00'})
        check(('modify', 'bad-request'), form={'with': '@@@'})
        check(('modify', 'bad-request'), set_=rsm('-1'))
        check(('modify', 'bad-request'), set_=rsm('ten'))
        check(('cancel', 'item-not-found'), set_=rsm(5, after='no-such-id'))
        check(('cancel', 'item-not-found'), set_=rsm(5, before='x' * 300))
        check(('cancel', 'feature-not-implemented'), set_=rsm(5, extra='<index>2</index>'))
        # a form that is no form
        r = b.iq('set', "<query xmlns='%s'><x xmlns='%s' type='submit'><field/></x></query>"
                 % (NS_MAM, NS_XDATA), to=room)
        self.assertEqual(err(r)[1], 'bad-request')
        # and the room still answers
        self.assertEqual(self.page(b, room).ids(), sids)


class TestModeration(ArchiveTestCase):

    def retract(self, c, room, sid, reason=None, v0=False):
        reason_xml = '<reason>%s</reason>' % xml_escape(reason) if reason else ''
        if v0:
            payload = ("<apply-to xmlns='%s' id='%s'><moderate xmlns='%s'><retract xmlns='%s'/>%s</moderate>"
                       "</apply-to>" % (NS_FASTEN, sid, NS_MODERATE0, NS_RETRACT0, reason_xml))
        else:
            payload = "<moderate xmlns='%s' id='%s'><retract xmlns='%s'/>%s</moderate>" % (
                NS_MODERATE, sid, NS_RETRACT, reason_xml)
        return c.iq('set', payload, to=room)

    def retraction(self, c, room, sid):
        return c.wait(lambda s: is_msg(s, from_=room, type_='groupchat')
                      and s.find(q(NS_RETRACT, 'retract')) is not None
                      and s.find(q(NS_RETRACT, 'retract')).get('id') == sid,
                      what='retraction of %s' % sid)

    def test_moderator_retracts_and_archive_keeps_tombstone(self):
        room, a, b, c = self.three('mod', PERSISTENT)
        sids = self.talk(room, [(b, 'Bob', 'spam spam'), (c, 'Carol', 'fine')])
        self.settle(a, b, c)
        alice_id = None
        r = self.retract(a, room, sids[0], reason='Spam')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x in (a, b, c):
            m = self.retraction(x, room, sids[0])
            mod = m.find('%s/%s' % (q(NS_RETRACT, 'retract'), q(NS_MODERATE, 'moderated')))
            self.assertEqual(mod.get('by'), room + '/Alice')
            alice_id = alice_id or mod.find(q(NS_OCCID, 'occupant-id')).get('id')
            self.assertEqual(m.find(q(NS_RETRACT, 'retract')).findtext(q(NS_RETRACT, 'reason')), 'Spam')
            # and the older form, fastened
            ap = m.find(q(NS_FASTEN, 'apply-to'))
            self.assertEqual(ap.get('id'), sids[0])
            self.assertIsNotNone(ap.find('%s/%s' % (q(NS_MODERATE0, 'moderated'), q(NS_RETRACT0, 'retract'))))
            self.assertIsNone(m.find(q(NS_CLIENT, 'body')))
        # the archive: a tombstone where the message was, then the retraction itself
        d = self.client('dave')
        self.enter(d, room, 'Dave')
        hist = d.take(lambda s: is_msg(s, type_='groupchat') and s.find(q(NS_DELAY, 'delay')) is not None)
        self.assertNotIn('spam spam', [h.findtext(q(NS_CLIENT, 'body')) for h in hist])
        tomb_hist = [h for h in hist if sid_of(h, room) == sids[0]]
        self.assertEqual(len(tomb_hist), 1, d.dump(hist))
        self.assertIsNotNone(tomb_hist[0].find(q(NS_RETRACT, 'retracted')))
        p = self.page(d, room)
        self.assertEqual(p.ids()[:2], sids)
        tomb = p.results[0][1]
        self.assertIsNone(tomb.find(q(NS_CLIENT, 'body')), to_str(tomb))
        self.assertNotIn('spam', to_str(tomb))
        self.assertEqual(tomb.get('from'), room + '/Bob')
        rd = tomb.find(q(NS_RETRACT, 'retracted'))
        self.assertIsNotNone(rd.get('stamp'))
        md = rd.find(q(NS_MODERATE, 'moderated'))
        self.assertEqual(md.get('by'), room + '/Alice')
        self.assertEqual(md.find(q(NS_OCCID, 'occupant-id')).get('id'), alice_id)
        self.assertEqual(rd.findtext(q(NS_RETRACT, 'reason')), 'Spam')
        self.assertIsNotNone(occid(tomb))  # the author's, kept
        self.assertEqual(p.results[1][1].findtext(q(NS_CLIENT, 'body')), 'fine')
        self.assertEqual(p.results[2][1].find(q(NS_RETRACT, 'retract')).get('id'), sids[0])
        # after a restart, the tombstone is what is kept
        self.settle(a, b, c, d)
        self.srv.restart()
        e = self.client('eve')
        self.enter(e, room, 'Eve')
        p = self.page(e, room)
        self.assertEqual(p.ids()[0], sids[0])
        self.assertIsNotNone(p.results[0][1].find(q(NS_RETRACT, 'retracted')))
        self.assertNotIn('spam spam', [m.findtext(q(NS_CLIENT, 'body')) for _, m, _ in p.results])

    def test_refusals(self):
        room, a, b, c = self.three('mod2', PERSISTENT)
        sids = self.talk(room, [(c, 'Carol', 'mine')])
        self.settle(a, b, c)
        # bob is a participant: forbidden, and nothing is broadcast
        self.assertEqual(err(self.retract(b, room, sids[0])), ('auth', 'forbidden'))
        # an outsider too
        d = self.client('dave')
        self.assertEqual(err(self.retract(d, room, sids[0])), ('auth', 'forbidden'))
        # unknown id, missing id, no retract, a reason too long
        self.assertEqual(err(self.retract(a, room, 'no-such-id')), ('cancel', 'item-not-found'))
        self.assertEqual(err(self.retract(a, room, 'x' * 400)), ('cancel', 'item-not-found'))
        r = a.iq('set', "<moderate xmlns='%s'><retract xmlns='%s'/></moderate>" % (NS_MODERATE, NS_RETRACT),
                 to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        r = a.iq('set', "<moderate xmlns='%s' id='%s'/>" % (NS_MODERATE, sids[0]), to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        self.assertEqual(err(self.retract(a, room, sids[0], reason='r' * 2000)), ('modify', 'not-acceptable'))
        for x in (a, b, c):
            x.expect_none(lambda s: is_msg(s) and s.find(q(NS_RETRACT, 'retract')) is not None,
                          'retraction')
        self.assertEqual(self.page(b, room).bodies(), ['mine'])
        # a forged retraction or tombstone in a groupchat message does not pass the room
        b.send("<message to='%s' type='groupchat'><body>hi</body><retract xmlns='%s' id='%s'>"
               "<moderated xmlns='%s' by='%s/Alice'/></retract><retracted xmlns='%s'/></message>"
               % (room, NS_RETRACT, sids[0], NS_MODERATE, room, NS_RETRACT))
        m = self.got_groupchat(c, room, 'Bob', 'hi')
        self.assertIsNone(m.find(q(NS_RETRACT, 'retracted')), to_str(m))
        self.assertIsNone(m.find('.//' + q(NS_MODERATE, 'moderated')), to_str(m))

    def test_older_form_and_messages_only_in_the_log(self):
        room, a, b, c = self.three('mod3', PERSISTENT)
        # more than the history keeps: the first is only in the log
        first = self.talk(room, [(b, 'Bob', 'old one')])[0]
        for i in range(105):
            self.say(b, room, 'filler %d' % i)
        self.got_groupchat(b, room, 'Bob', 'filler 104')
        self.settle(a, b, c)
        a.take()
        c.take()
        r = self.retract(a, room, first, reason='late', v0=True)  # XEP-0425 0.2, as slixmpp 1.8
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.retraction(c, room, first)
        p = self.page(c, room, set_=rsm(1))
        self.assertEqual(p.ids(), [first])
        self.assertIsNotNone(p.results[0][1].find(q(NS_RETRACT, 'retracted')))


class TestOccupantId(ArchiveTestCase):

    def test_stable_per_room_and_user_forgeries_replaced(self):
        room, a, b, c = self.three('ids')
        # bob's id as seen in presence, in groupchat, in a private message: the same
        b2 = self.client('bob', resource='r2')
        s = self.join(b2, room, 'Bobby')
        pres = self.pres_from(a, room, 'Bobby')
        b_id = occid(pres)
        self.assertIsNotNone(b_id)
        self.assertEqual(occid(s), b_id)
        # forged occupant-ids, in presence and messages, are replaced by the room's
        b.send("<presence to='%s/Bob'><status>away</status><occupant-id xmlns='%s' id='forged'/></presence>"
               % (room, NS_OCCID))
        pres = a.wait(lambda x: is_pres(x, from_=room + '/Bob') and x.findtext(q(NS_CLIENT, 'status')) == 'away',
                      what='bob away')
        self.assertEqual(occid(pres), b_id)
        b.send("<message to='%s' type='groupchat'><body>hi</body><occupant-id xmlns='%s' id='forged'/></message>"
               % (room, NS_OCCID))
        self.assertEqual(occid(self.got_groupchat(c, room, 'Bob', 'hi')), b_id)
        b.send("<message to='%s/Carol' type='chat'><body>psst</body><occupant-id xmlns='%s' id='forged'/>"
               "</message>" % (room, NS_OCCID))
        pm = c.wait(lambda x: is_msg(x, from_=room + '/Bob', type_='chat'), what='private message')
        self.assertEqual(occid(pm), b_id)
        # another user has another id; so has bob in another room
        self.assertNotEqual(occid(self.got_groupchat(b, room, 'Bob', 'hi')), None)
        self.say(c, room, 'me')
        c_id = occid(self.got_groupchat(a, room, 'Carol', 'me'))
        self.assertNotIn(c_id, (None, b_id))
        room2 = self.create(a, 'ids2', 'Alice')
        s = self.enter(b, room2, 'Bob')
        self.assertNotIn(occid(s), (None, b_id))
        # and a nick change keeps it
        b.send("<presence to='%s/Robert'/>" % room)
        pres = self.pres_from(c, room, 'Robert')
        self.assertEqual(occid(pres), b_id)



class TestRoomAvatar(ArchiveTestCase):
    """XEP-0486: a room's vCard and avatar hash."""

    PNG = base64.b64encode(bytes(range(256)) * 3).decode()

    def vcard_xml(self, binval, type_='image/png'):
        return ("<vCard xmlns='vcard-temp'><FN>The room</FN><PHOTO><TYPE>%s</TYPE><BINVAL>%s</BINVAL>"
                "</PHOTO></vCard>" % (type_, binval))

    def avatar_hashes(self, c, room):
        r = c.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertIn(NS_VCARD, features(r))
        x = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_XDATA, 'x')))
        for f in x.findall(q(NS_XDATA, 'field')):
            if f.get('var') == 'muc#roominfo_avatarhash':
                return [v.text for v in f.findall(q(NS_XDATA, 'value'))]
        return None

    def binval(self, c, room):
        r = c.iq_ok('get', "<vCard xmlns='%s'/>" % NS_VCARD, to=room)
        vc = r.find(q(NS_VCARD, 'vCard'))
        self.assertIsNotNone(vc, to_str(r))
        return vc.findtext('%s/%s' % (q(NS_VCARD, 'PHOTO'), q(NS_VCARD, 'BINVAL')))

    def test_owner_sets_everyone_reads(self):
        room, a, b, c = self.three('pic', PERSISTENT)
        self.assertIsNone(self.avatar_hashes(b, room))
        self.assertIsNone(self.binval(b, room))
        # only owners
        r = b.iq('set', self.vcard_xml(self.PNG), to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        # BINVAL with line breaks, as clients send it
        wrapped = '\n'.join(self.PNG[i:i + 76] for i in range(0, len(self.PNG), 76))
        a.iq_ok('set', self.vcard_xml(wrapped), to=room)
        for x in (a, b, c):
            x.wait(lambda s: is_msg(s, from_=room, type_='groupchat') and 104 in codes(s), what='104')
        want = hashlib.sha1(base64.b64decode(self.PNG)).hexdigest()
        self.assertEqual(self.avatar_hashes(b, room), [want])
        e = self.client('eve')  # not in the room: still sees it (before joining, XEP-0486 §1)
        self.assertEqual(self.avatar_hashes(e, room), [want])
        self.assertEqual(self.binval(e, room).replace('\n', ''), self.PNG)
        # bad input: not base64, too large; nothing changes
        r = a.iq('set', self.vcard_xml('!!not base64!!'), to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        r = a.iq('set', self.vcard_xml('A' * 70000), to=room)
        self.assertEqual(err(r), ('modify', 'not-acceptable'))
        self.assertEqual(self.avatar_hashes(e, room), [want])
        # kept across a restart
        self.settle(a, b, c)
        self.srv.restart()
        e = self.client('eve')
        self.assertEqual(self.avatar_hashes(e, room), [want])
        self.assertEqual(self.binval(e, room).replace('\n', ''), self.PNG)
        # an empty vCard removes it
        a = self.client('alice')
        self.enter(a, room, 'Alice')
        a.iq_ok('set', "<vCard xmlns='%s'/>" % NS_VCARD, to=room)
        self.assertIsNone(self.avatar_hashes(e, room))
        self.assertIsNone(self.binval(e, room))

    def test_temporary_room_and_destroy(self):
        room, a, b, c = self.three('tpic')
        a.iq_ok('set', self.vcard_xml(self.PNG), to=room)
        self.assertEqual(self.binval(c, room), self.PNG)
        self.assertEqual(len(self.avatar_hashes(c, room)), 1)
        # made persistent: stored, and still there after a restart
        self.assertEqual(self.configure(a, room, PERSISTENT).get('type'), 'result')
        self.settle(a, b, c)
        self.srv.restart()
        d = self.client('dave')
        self.assertEqual(self.binval(d, room), self.PNG)
        # destroyed and made again: no avatar
        a = self.client('alice')
        self.enter(a, room, 'Alice')
        a.iq_ok('set', "<query xmlns='%s#owner'><destroy/></query>" % NS_MUC, to=room)
        self.create(a, 'tpic', 'Alice', PERSISTENT)
        self.assertIsNone(self.avatar_hashes(d, room))
        self.assertIsNone(self.binval(d, room))


if __name__ == '__main__':
    main()
