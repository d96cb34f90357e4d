"""Presence subscriptions (RFC 6121 section 3 and every transition of
Appendix A, to online and to offline contacts), presence broadcast and probes
(section 4, caps elements kept), priorities, unavailable on logout and on
abrupt disconnect, directed presence, and last activity (XEP-0012)."""

import time

from hearth import DOMAIN, q, to_str, main
from imlib import (INBOUND, IMClient, NS_CAPS, NS_LAST, NS_PREAPPROVAL, OUTBOUND, STATES, IMTestCase, bare,
                   caps_xml, err, has_from, has_in, has_to, is_iq, is_pres, is_push, is_sub, make_state,
                   mirror, note, push_item, view_of, wait_for)

AJ = 'alice@localhost'
BJ = 'bob@localhost'
CJ = 'carol@localhost'
DJ = 'dave@localhost'


# --------------------------------------------------------------------------
# Appendix A: every (stanza type, state) pair, the contact online


class SubscriptionMatrixBase(IMTestCase):
    """alice (the user) sends a subscription stanza of type t to bob (the
    contact) while alice is in `state` towards bob. That exercises one row of
    each table of A.2 (outbound, alice's server) and of A.3 (inbound, bob's
    server, where bob's state is the mirror of alice's)."""

    def expectations(self, t, state):
        new_a = OUTBOUND[t][state] or state
        deliver, new_b = INBOUND[t][mirror(state)]
        return new_a, deliver, new_b or mirror(state)

    def check_pushes(self, c, jid, want_state):
        """Every push about jid still in c's backlog shows want_state's view."""
        for p in c.take(lambda s: is_push(s, jid)):
            it = push_item(p)
            self.assertEqual((it['subscription'], it['ask']), view_of(want_state),
                             '%s: push with a wrong state (expected %s): %s' % (c.jid, want_state, to_str(p)))

    def probe_pending_in(self, a, b, a_state):
        """Pending-in is not visible in the roster: test it by approving.
        With a pending request alice's 'subscribed' reaches bob (A.2.3 route:
        yes); without one it is not routed."""
        a.take()
        b.take()
        a.sub('subscribed', BJ)
        if has_in(a_state):
            p = b.wait(lambda s: is_sub(s, 'subscribed'), what='subscribed (alice had a pending request)')
            self.assertEqual(p.get('from'), AJ)
            self.wait_view(a, BJ, OUTBOUND['subscribed'][a_state])
        else:
            self.settle(a, b)
            b.expect_none(lambda s: is_sub(s, 'subscribed'),
                          'subscribed routed although alice had no pending request (state %s)' % a_state)
            self.assertView(a, BJ, a_state, '(after an unrequested subscribed)')

    def run_online(self, t, state):
        # three users, four sessions: alice twice (a sends, a2 is her second
        # interested and available resource), bob, and carol as a bystander
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        a2 = self.connect(s, 'alice', 'a2')
        b = self.connect(s, 'bob', 'b')
        c = self.connect(s, 'carol', 'c')
        make_state(self, a, b, state)
        self.settle(a2, c)
        a2.take()
        c.take()
        new_a, deliver, new_b = self.expectations(t, state)
        a.sub(t, BJ)
        if deliver:
            p = b.wait(lambda s: is_sub(s, t), what='%s from alice (A.3 deliver: yes)' % t)
            self.assertEqual(p.get('from'), AJ, 'subscription stanzas carry the bare JID: %s' % to_str(p))
            self.assertIn(p.get('to'), (BJ, b.jid), to_str(p))
        if view_of(new_a) != view_of(state):
            self.wait_push(a, BJ, state=new_a)
            self.wait_push(a2, BJ, state=new_a)
        if view_of(new_b) != view_of(mirror(state)):
            self.wait_push(b, AJ, state=new_b)
        # presence that must follow the change (RFC 6121 3.1.5, 3.2.2, 3.3.3),
        # from and to each available resource
        for ax in (a, a2):
            if not has_from(state) and has_from(new_a):
                b.wait(lambda s: is_pres(s, from_=ax.jid), what="%s's presence after the approval" % ax.jid)
            if has_from(state) and not has_from(new_a):
                b.wait(lambda s: is_pres(s, from_=ax.jid, type_='unavailable'),
                       what="%s's unavailable after the cancellation" % ax.jid)
            if has_to(state) and not has_to(new_a):
                ax.wait(lambda s: is_pres(s, from_=b.jid, type_='unavailable'),
                        what="bob's unavailable after alice unsubscribed")
        self.settle(a, b, a2, c, a)
        if not deliver:
            b.expect_none(lambda s: is_sub(s, t), '%s delivered in bob state %s (A.3: no)' % (t, mirror(state)))
        for ax in (a, a2):
            ax.expect_none(is_sub, 'subscription stanza to alice')
        b.expect_none(lambda s: is_sub(s) and s.get('type') != t, 'other subscription stanza to bob')
        c.expect_none(lambda s: bare(s.get('from')) in (AJ, BJ) or is_push(s), 'anything reaching the bystander')
        self.check_pushes(a, BJ, new_a)
        self.check_pushes(a2, BJ, new_a)
        self.check_pushes(b, AJ, new_b)
        self.wait_view(a, BJ, new_a)
        self.wait_view(b, AJ, new_b)
        if has_in(state) or has_in(new_a):
            self.probe_pending_in(a, b, new_a)

    def run_offline(self, t, state):
        """The same with bob offline: the change is applied at once; bob
        finds it when he logs in again, and a pending request is delivered
        when he sends initial presence."""
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        make_state(self, a, b, state)
        new_a, deliver, new_b = self.expectations(t, state)
        b.logout()
        if has_to(state):
            a.wait(lambda s: is_pres(s, from_=b.jid, type_='unavailable'), what="bob's unavailable at logout")
        a.sub(t, BJ)
        if view_of(new_a) != view_of(state):
            self.wait_push(a, BJ, state=new_a)
        a.sync()
        a.take()
        b = self.connect(s, 'bob', 'b2', presence=False)
        self.wait_view(b, AJ, new_b)
        b.expect_none(lambda s: is_sub(s, 'subscribe'), 'subscription request before initial presence')
        b.presence()
        if has_in(new_b):
            p = b.wait(lambda s: is_sub(s, 'subscribe'), what='the stored subscription request')
            self.assertEqual(p.get('from'), AJ)
        if has_from(new_a):  # bob is subscribed to alice: his probe is answered
            b.wait(lambda s: is_pres(s, from_=a.jid), what="alice's presence (probe answer)")
        if has_to(new_a):  # alice is subscribed to bob: bob's initial presence reaches her
            a.wait(lambda s: is_pres(s, from_=b.jid), what="bob's initial presence")
        self.settle(b, a, b)
        if not has_in(new_b):
            b.expect_none(lambda s: is_sub(s, 'subscribe'), 'subscription request that was cancelled or never pending')
        if not has_from(new_a):
            b.expect_none(lambda s: is_pres(s, from_bare=AJ), "alice's presence without a subscription")
        if not has_to(new_a):
            a.expect_none(lambda s: is_pres(s, from_bare=BJ), "bob's presence without a subscription")
        self.wait_view(a, BJ, new_a)
        self.wait_view(b, AJ, new_b)
        if has_in(state) or has_in(new_a):
            self.probe_pending_in(a, b, new_a)


def _add_matrix(cls, runner):
    for t in ('subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'):
        for st in STATES:
            name = 'test_%s_in_%s' % (t, st.replace('+', '_'))

            def f(self, t=t, st=st):
                getattr(self, runner)(t, st)
            f.__name__ = name
            f.__doc__ = 'alice (%s) sends %s' % (st, t)
            setattr(cls, name, f)


class SubscriptionOnlineTest(SubscriptionMatrixBase):
    pass


class SubscriptionOfflineTest(SubscriptionMatrixBase):
    pass


_add_matrix(SubscriptionOnlineTest, 'run_online')
_add_matrix(SubscriptionOfflineTest, 'run_offline')


# --------------------------------------------------------------------------
# Subscription flows with several resources and third parties


class SubscriptionFlowTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def test_flow_with_two_resources_each(self):
        a1 = self.connect(self.s, 'alice', 'a1')
        a2 = self.connect(self.s, 'alice', 'a2')
        b1 = self.connect(self.s, 'bob', 'b1', priority=1)
        b2 = self.connect(self.s, 'bob', 'b2', priority=0, children=caps_xml())
        c = self.connect(self.s, 'carol', 'c')
        for x in (a1, a2, b1, b2, c):  # carol's own presence comes back to her (4.2.2)
            x.take()
        a1.sub('subscribe', BJ)
        for x in (a1, a2):
            self.wait_push(x, BJ, state='none+out')
        for x in (b1, b2):  # to every available resource
            p = x.wait(lambda s: is_sub(s, 'subscribe'), what='subscribe')
            self.assertEqual(p.get('from'), AJ)
        b2.sub('subscribed', AJ)
        for x in (b1, b2):
            self.wait_push(x, AJ, state='from')
        for x in (a1, a2):
            p = x.wait(lambda s: is_sub(s, 'subscribed'), what='subscribed')
            self.assertEqual(p.get('from'), BJ)
            self.wait_push(x, BJ, state='to')
            # bob's current presence from each available resource (3.1.5)
            x.wait(lambda s: is_pres(s, from_=b1.jid), what='presence of b1')
            p2 = x.wait(lambda s: is_pres(s, from_=b2.jid), what='presence of b2')
            self.assertEqual(p2.findtext('{jabber:client}priority'), '0')
            self.assertIsNotNone(p2.find(q(NS_CAPS, 'c')), to_str(p2))
        self.settle(a1, b1, b2, a2)
        c.expect_none(lambda s: bare(s.get('from')) != CJ, 'anything reaching carol')
        # alice -> bob only: bob does not see alice's presence
        a1.presence(status='only for my subscribers')
        self.settle(a1, b1, b2)
        for x in (b1, b2):
            x.expect_none(lambda s: is_pres(s, from_bare=AJ), "alice's presence at bob (bob has 'from')")
        # bob's resources come and go; alice sees each one
        b2.logout()
        for x in (a1, a2):
            x.wait(lambda s: is_pres(s, from_=b2.jid, type_='unavailable'), what='b2 unavailable')

    def test_subscribe_to_full_jid_is_bare(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        a.send("<presence to='%s' type='subscribe'/>" % b.jid)
        it = self.wait_push(a, BJ, state='none+out')
        self.assertEqual(it['jid'], BJ)
        p = b.wait(lambda s: is_sub(s, 'subscribe'))
        self.assertEqual(p.get('from'), AJ)
        self.assertEqual(list(a.roster()), [BJ])

    def test_subscription_from_is_bare_even_if_forged(self):
        # the client's own full JID as 'from' is allowed; the server stamps the bare JID
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        a.send("<presence from='%s' to='%s' type='subscribe'/>" % (a.jid, BJ))
        p = b.wait(lambda s: is_sub(s, 'subscribe'))
        self.assertEqual(p.get('from'), AJ)

    def test_subscribe_nonexistent_user(self):
        a = self.connect(self.s, 'alice', 'a')
        a.sub('subscribe', 'nobody@localhost')
        self.wait_push(a, 'nobody@localhost', state='none+out')
        a.sync()
        answers = a.take(lambda s: s.tag.endswith('presence') and bare(s.get('from')) == 'nobody@localhost')
        if answers:  # RFC 6121 3.1.3 allows an unsubscribed in answer (or silence)
            self.assertIn(answers[0].get('type'), ('unsubscribed', 'error'), to_str(answers[0]))
            note('subscribe to a nonexistent user: %s' % answers[0].get('type'))
            if answers[0].get('type') == 'unsubscribed':
                self.wait_view(a, 'nobody@localhost', 'none')

    def test_request_to_offline_user_kept_until_answered(self):
        a = self.connect(self.s, 'alice', 'a')
        a.sub('subscribe', BJ)
        self.wait_push(a, BJ, state='none+out')
        a.sync()
        # a session without initial presence is not available: nothing yet
        b = self.connect(self.s, 'bob', 'b', presence=False)
        b.expect_none(lambda s: is_sub(s), 'subscribe before initial presence')
        b.presence()
        p = b.wait(lambda s: is_sub(s, 'subscribe'), what='stored subscribe')
        self.assertEqual(p.get('from'), AJ)
        b.logout()
        # not answered: delivered again at the next login (RFC 6121 3.1.3)
        b = self.connect(self.s, 'bob', 'b', presence=True)
        b.wait(lambda s: is_sub(s, 'subscribe'), what='stored subscribe, again')
        b.sub('subscribed', AJ)
        a.wait(lambda s: is_sub(s, 'subscribed'))
        self.wait_push(a, BJ, state='to')
        b.logout()
        b = self.connect(self.s, 'bob', 'b', presence=True)
        b.expect_none(lambda s: is_sub(s), 'subscribe after it was approved')
        self.assertEqual(b.view(AJ), ('from', None))

    def test_request_to_user_who_never_logged_in_then_two_resources(self):
        a = self.connect(self.s, 'alice', 'a')
        a.sub('subscribe', CJ)
        a.sync()
        c1 = self.connect(self.s, 'carol', 'c1')
        c1.wait(lambda s: is_sub(s, 'subscribe'), what='stored subscribe at c1')
        c2 = self.connect(self.s, 'carol', 'c2')
        c2.wait(lambda s: is_sub(s, 'subscribe'), what='stored subscribe at c2, a new available resource')
        c2.sub('unsubscribed', AJ)  # denied
        p = a.wait(lambda s: is_sub(s, 'unsubscribed'))
        self.assertEqual(p.get('from'), CJ)
        self.wait_push(a, CJ, state='none')

    def test_roster_remove_cancels_both_ways(self):
        # RFC 6121 2.5.2: removing an item with a subscription sends
        # unsubscribe and unsubscribed to the contact
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        r = a.roster_remove(BJ)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        a.wait(lambda s: is_push(s, BJ) and push_item(s)['subscription'] == 'remove')
        b.wait(lambda s: is_sub(s, 'unsubscribe'), what='unsubscribe')
        b.wait(lambda s: is_sub(s, 'unsubscribed'), what='unsubscribed')
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what="alice's unavailable")
        a.wait(lambda s: is_pres(s, from_=b.jid, type_='unavailable'), what="bob's unavailable")
        self.wait_view(b, AJ, 'none')
        self.assertNotIn(BJ, a.roster())
        # no presence flows any more
        a.presence(status='x')
        b.presence(status='y')
        self.settle(a, b, a)
        b.expect_none(lambda s: is_pres(s, from_bare=AJ))
        a.expect_none(lambda s: is_pres(s, from_bare=BJ))

    def test_roster_remove_denies_pending_request(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        b.sub('subscribe', AJ)
        a.wait(lambda s: is_sub(s, 'subscribe'))
        if a.item(BJ) is None:
            # RFC 6121 3.1.3 lets the server keep the request without an item
            a.roster_set(BJ, 'Bob')
            self.wait_push(a, BJ)
        self.assertEqual(a.roster_remove(BJ).get('type'), 'result')
        b.wait(lambda s: is_sub(s, 'unsubscribed'), what='unsubscribed for the removed pending request')
        self.wait_view(b, AJ, 'none')
        a.logout()
        a = self.connect(self.s, 'alice', 'a')
        a.expect_none(lambda s: is_sub(s, 'subscribe'), 'the denied request delivered again')

    def test_preapproval(self):
        a = self.connect(self.s, 'alice', 'a')
        if a.features.find(q(NS_PREAPPROVAL, 'sub')) is None:
            note('pre-approval (RFC 6121 3.4) not advertised: outbound subscribed in None is ignored')
            b = self.connect(self.s, 'bob', 'b')
            a.sub('subscribed', BJ)
            self.settle(a, b)
            b.expect_none(is_sub, 'an unrequested subscribed routed')
            b.sub('subscribe', AJ)
            a.wait(lambda s: is_sub(s, 'subscribe'), what='the request (not pre-approved)')
            return
        b = self.connect(self.s, 'bob', 'b')
        a.sub('subscribed', BJ)
        it = self.wait_push(a, BJ)
        self.assertEqual((it['subscription'], it['approved']), ('none', 'true'))
        b.expect_none(is_sub, 'pre-approval routed')
        b.sub('subscribe', AJ)
        b.wait(lambda s: is_sub(s, 'subscribed'), what='automatic approval')
        self.wait_push(a, BJ, state='from')
        a.expect_none(lambda s: is_sub(s, 'subscribe'), 'pre-approved request delivered')


# --------------------------------------------------------------------------
# Presence broadcast, probes, updates, unavailable


class PresenceTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def contacts(self):
        """alice both with bob; carol subscribed to alice (alice: from carol);
        alice subscribed to dave (alice: to dave). Everyone online."""
        a = self.connect(self.s, 'alice', 'setup')
        b = self.connect(self.s, 'bob', 'b')
        c = self.connect(self.s, 'carol', 'c')
        d = self.connect(self.s, 'dave', 'd')
        make_state(self, a, b, 'both')
        make_state(self, a, c, 'from')
        make_state(self, a, d, 'to')
        return a, b, c, d

    def test_initial_presence_broadcast_and_probes(self):
        a0, b, c, d = self.contacts()
        a0.logout()
        for x in (b, c):
            x.wait(lambda s: is_pres(s, from_=a0.jid, type_='unavailable'), what='unavailable of the setup session')
        self.settle(b, c, d)
        for x in (b, c, d):
            x.take()
        d.presence(status='dave here', priority=3)
        d.sync()
        a = self.connect(self.s, 'alice', 'phone', presence=False)
        caps = caps_xml()
        a.send("<presence id='p1'><status>IchatMM</status><priority>0</priority>%s</presence>" % caps)
        for x in (b, c):
            p = x.wait(lambda s: is_pres(s, from_=a.jid), what="alice's initial presence")
            self.assertIn(p.get('to'), (x.jid, bare(x.jid)), to_str(p))
            self.assertEqual(p.findtext('{jabber:client}status'), 'IchatMM')
            self.assertEqual(p.findtext('{jabber:client}priority'), '0')
            self.assertIsNotNone(p.find(q(NS_CAPS, 'c')), to_str(p))
            self.assertIn(caps.encode(), bytes(x.raw), 'caps element not kept byte-for-byte')
        # probes: bob (both) and dave (to) answer; carol (alice has 'from' only) does not
        pb = a.wait(lambda s: is_pres(s, from_=b.jid), what="bob's presence")
        pd = a.wait(lambda s: is_pres(s, from_=d.jid), what="dave's presence")
        self.assertEqual((pd.findtext('{jabber:client}status'), pd.findtext('{jabber:client}priority')),
                         ('dave here', '3'))
        self.assertIn(pb.get('to'), (a.jid, AJ))
        # the own presence comes back (RFC 6121 4.2.2: "including the resource that generated" it)
        a.wait(lambda s: is_pres(s, from_=a.jid), what='own presence echoed')
        self.settle(a, d, a)
        d.expect_none(lambda s: is_pres(s, from_bare=AJ), "alice's presence at dave (dave has 'from' only)")
        a.expect_none(lambda s: is_pres(s, from_bare=CJ), "carol's presence at alice (alice has 'from' only)")

    def test_probe_answers_every_available_resource_with_caps(self):
        a = self.connect(self.s, 'alice', 'a')
        b1 = self.connect(self.s, 'bob', 'pc')
        make_state(self, a, b1, 'to')
        caps1 = caps_xml('http://example.org/desktop', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=')
        caps2 = "<c xmlns=\"http://jabber.org/protocol/caps\" node=\"http://example.org/phone\" " \
                "hash=\"sha-1\" ver=\"BBBBBBBBBBBBBBBBBBBBBBBBBBB=\" ext=\"voice-v1\"/>"
        b1.presence(show='dnd', status='working', priority=5, children=caps1)
        b2 = self.connect(self.s, 'bob', 'phone', priority=-5, children=caps2)
        b3 = self.connect(self.s, 'bob', 'silent', presence=False)  # bound, never available
        a.logout()
        a = self.connect(self.s, 'alice', 'again', presence=False)
        a.presence()
        p1 = a.wait(lambda s: is_pres(s, from_=b1.jid), what='presence of bob/pc')
        p2 = a.wait(lambda s: is_pres(s, from_=b2.jid), what='presence of bob/phone')
        self.assertEqual((p1.findtext('{jabber:client}show'), p1.findtext('{jabber:client}status'),
                          p1.findtext('{jabber:client}priority')), ('dnd', 'working', '5'))
        self.assertEqual(p2.findtext('{jabber:client}priority'), '-5')
        raw = bytes(a.raw)
        self.assertIn(caps1.encode(), raw, 'caps of bob/pc not byte-for-byte')
        # caps2 was written with double quotes: the same attributes, in the
        # same order, with the same values (the quote character may change)
        c2 = p2.find(q(NS_CAPS, 'c'))
        self.assertIsNotNone(c2, to_str(p2))
        self.assertEqual(list(c2.attrib.items()),
                         [('node', 'http://example.org/phone'), ('hash', 'sha-1'),
                          ('ver', 'BBBBBBBBBBBBBBBBBBBBBBBBBBB='), ('ext', 'voice-v1')])
        if caps2.encode() not in raw:
            note('caps element written with double quotes arrives re-quoted with single quotes')
        self.settle(b3, a)
        a.expect_none(lambda s: is_pres(s, from_=b3.jid), 'presence of a session that never sent any')

    def test_updates_broadcast_to_contacts_and_own_resources(self):
        a, b, c, d = self.contacts()
        a2 = self.connect(self.s, 'alice', 'second')
        for x in (a, b, c, d, a2):
            x.sync()
            x.take()
        a.presence(show='away', status='lunch', priority=2)
        for x in (b, c, a2, a):
            p = x.wait(lambda s: is_pres(s, from_=a.jid) and s.findtext('{jabber:client}show') == 'away',
                       what='the update')
            self.assertEqual((p.findtext('{jabber:client}show'), p.findtext('{jabber:client}status')),
                             ('away', 'lunch'))
        self.settle(a, d)
        d.expect_none(lambda s: is_pres(s, from_bare=AJ), 'update at a non-subscriber')

    def test_removed_account_goes_unavailable_before_unsubscribing(self):
        # RFC 6121 3.2.2: cancelling a subscription sends unavailable from each available
        # resource; XEP-0077 3.2's removal cancels them all, so contacts see alice go offline
        # (two resources here) and then lose the subscription both ways
        a = self.connect(self.s, 'alice', 'a')
        a2 = self.connect(self.s, 'alice', 'a2')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        self.settle(a, b)
        r = a.iq('set', "<query xmlns='jabber:iq:register'><remove/></query>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        b.wait(lambda s: is_sub(s, 'unsubscribed', AJ), what='unsubscribed from alice')
        # what came before it waits in the backlog, in order
        got = [s for s in b.backlog if is_pres(s, type_='unavailable')]
        self.assertEqual(sorted(s.get('from') for s in got), sorted([a.jid, a2.jid]), b.dump())
        # once each: the sessions' own ends, later, find nobody left to tell
        b.backlog = [s for s in b.backlog if s not in got]
        b.expect_none(lambda s: is_pres(s, type_='unavailable'), 'a second unavailable')

    def test_bound_session_without_presence_gets_no_broadcast(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        b2 = self.connect(self.s, 'bob', 'quiet', presence=False)
        a.presence(status='hello')
        b.wait(lambda s: is_pres(s, from_=a.jid))
        self.settle(a, b2)
        b2.expect_none(lambda s: is_pres(s, from_bare=AJ), 'broadcast to an unavailable session')
        b2.presence()
        b2.wait(lambda s: is_pres(s, from_=a.jid), what='probe answer once available')

    def test_priority_range(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'from')
        for good in ('127', '-128', '0'):
            a.presence(priority=good)
            p = b.wait(lambda s: is_pres(s, from_=a.jid) and s.findtext('{jabber:client}priority') == good,
                       what='presence with priority %s' % good)
            self.assertEqual(p.findtext('{jabber:client}priority'), good)
        for bad in ('128', '-129', '1000', 'abc'):
            a.send("<presence id='bad%s'><priority>%s</priority></presence>" % (bad, bad))
            e = a.wait(lambda s: s.tag.endswith('presence') and s.get('type') == 'error',
                       what='error for priority %r' % bad)
            self.assertEqual(err(e)[1], 'bad-request', to_str(e))
        self.settle(a, b)
        b.expect_none(lambda s: is_pres(s, from_bare=AJ), 'presence with an invalid priority broadcast')

    def test_unavailable_on_logout(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        b2 = self.connect(self.s, 'bob', 'b2')
        make_state(self, a, b, 'both')
        a.send("<presence type='unavailable'><status>bye now</status></presence>")
        a.send('</stream:stream>')
        for x in (b, b2):
            p = x.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable')
            self.assertEqual(p.findtext('{jabber:client}status'), 'bye now')
        a.expect_closed(5)
        self.settle(b)
        b.expect_none(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), 'a second unavailable')

    def test_unavailable_on_stream_close_without_presence(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        a.send('</stream:stream>')
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable after </stream:stream>')

    def test_unavailable_on_abrupt_disconnect(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        a.drop()  # socket closed, no </stream:stream>
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable after a dropped socket')
        a = self.connect(self.s, 'alice', 'rst')
        b.wait(lambda s: is_pres(s, from_=a.jid), what='alice back')
        a.reset()  # TCP RST
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable after RST')
        # bob sees alice gone for good: a probe-free check through last activity
        r = b.iq('get', "<query xmlns='%s'/>" % NS_LAST, to=AJ)
        self.assertEqual(r.get('type'), 'result', to_str(r))

    def test_unavailable_then_available_again(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        a.presence(type_='unavailable')
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'))
        self.settle(a)
        a.take()
        a.presence(status='back')
        b.wait(lambda s: is_pres(s, from_=a.jid), what='available again')
        a.wait(lambda s: is_pres(s, from_=b.jid), what="bob's presence again (new probe)")

    def test_directed_presence_to_non_contact(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        d1 = self.connect(self.s, 'dave', 'd1')
        d2 = self.connect(self.s, 'dave', 'd2')
        c = self.connect(self.s, 'carol', 'c')
        make_state(self, a, b, 'both')
        a.presence(to=d1.jid, status='just for you')
        p = d1.wait(lambda s: is_pres(s, from_=a.jid), what='directed presence')
        self.assertEqual(p.findtext('{jabber:client}status'), 'just for you')
        a.presence(to=CJ, status='to the bare JID')
        c.wait(lambda s: is_pres(s, from_=a.jid), what='directed presence to the bare JID')
        self.settle(a, d2)
        d2.expect_none(lambda s: is_pres(s, from_bare=AJ), 'directed presence at another resource')
        a.logout()
        for x in (b, d1, c):
            x.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'),
                   what='unavailable at logout (directed presence recipients included)')

    def test_directed_presence_then_abrupt_disconnect(self):
        a = self.connect(self.s, 'alice', 'a')
        d = self.connect(self.s, 'dave', 'd')
        a.presence(to=d.jid)
        d.wait(lambda s: is_pres(s, from_=a.jid))
        a.drop()
        d.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable after a drop')


# --------------------------------------------------------------------------
# XEP-0012 last activity


class LastActivityTest(IMTestCase):
    def test_offline_contact(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        c = self.connect(s, 'carol', 'c')
        make_state(self, a, b, 'both')
        a.send("<presence type='unavailable'><status>gone fishing</status></presence>")
        a.send('</stream:stream>')
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'))
        t0 = time.monotonic()

        def seconds():
            r = b.iq('get', "<query xmlns='%s'/>" % NS_LAST, to=AJ)
            self.assertEqual(r.get('type'), 'result', to_str(r))
            qy = r.find(q(NS_LAST, 'query'))
            self.assertIsNotNone(qy, to_str(r))
            self.assertEqual(r.get('from'), AJ)
            return int(qy.get('seconds')), (qy.text or '')
        secs, text = seconds()
        self.assertEqual(text, 'gone fishing')
        self.assertGreaterEqual(secs, 0)
        self.assertLessEqual(secs, time.monotonic() - t0 + 2)
        wait_for(lambda: seconds()[0] >= 1, 5, 'last activity seconds to count up', interval=0.2)
        # without a subscription: forbidden (XEP-0012 section 4)
        r = c.iq('get', "<query xmlns='%s'/>" % NS_LAST, to=AJ)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r)[1], 'forbidden', to_str(r))

    def test_server_uptime(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')

        def uptime():
            r = a.iq('get', "<query xmlns='%s'/>" % NS_LAST, to=DOMAIN)
            self.assertEqual(r.get('type'), 'result', to_str(r))
            return int(r.find(q(NS_LAST, 'query')).get('seconds'))
        self.assertGreaterEqual(uptime(), 0)
        wait_for(lambda: uptime() >= 1, 5, 'uptime to count up', interval=0.2)


class SubscriptionRequestLimitTest(IMTestCase):
    """Regression: a subscription request was stored whole (up to the 256 KiB stanza limit,
    status and any payload) and every contact could leave one, so the requests waiting for one
    account were unbounded, in storage and in memory whenever the account was loaded."""

    N = 80

    def setUp(self):
        names = ['%s%02d' % ('s' * 1000, i) for i in range(self.N)]
        self.senders = names
        users = dict(self.users)
        users.update({n: 'password%d' % i for i, n in enumerate(names)})
        self.all_users = users
        self.s = self.start_server(users=users)

    def test_request_kept_small_and_requests_bounded(self):
        s = self.s
        big = 'é' * 60000  # 120 kB of status, cut at 1,024 bytes on a character boundary
        a = self.connect(s, 'alice', 'a', roster=False, presence=False)
        a.send("<presence to='bob@localhost' type='subscribe'><status>%s</status>"
               "<nick xmlns='http://jabber.org/protocol/nick'>Al</nick>"
               "<x xmlns='urn:example:payload'>%s</x></presence>" % (big, 'p' * 50000))
        a.sync()
        b = self.connect(s, 'bob', 'b', roster=False, presence=False)
        b.send('<presence/>')
        r = b.wait(lambda st: is_sub(st, 'subscribe', 'alice@localhost'))
        status = r.findtext(q('jabber:client', 'status'))
        self.assertEqual(status, 'é' * 512, 'status kept: %d bytes' % len(status.encode()))
        self.assertEqual(r.findtext(q('http://jabber.org/protocol/nick', 'nick')), 'Al')
        self.assertIsNone(r.find(q('urn:example:payload', 'x')), 'payload stored')
        b.logout()
        # many contacts, each with the largest request: past 256 KiB of them, refused
        clients = []
        for i, n in enumerate(self.senders):
            c = IMClient(s)
            self.addCleanup(c.close)
            c.login(n, self.all_users[n], resource='r')
            c.send('<presence/>')
            c.send("<presence to='carol@localhost' type='subscribe' id='s%d'><status>%s</status>"
                   "<nick xmlns='http://jabber.org/protocol/nick'>%s</nick></presence>"
                   % (i, 'x' * 2000, 'n' * 2000))
            clients.append(c)
        # every request is either stored or answered with an error: wait until all are one
        errors = {}

        def settled():
            for i, c in enumerate(clients):
                c.pump(0.01)
                for e in c.take(lambda st: st.get('type') == 'error'):
                    errors[i] = e
            stored = self.query("SELECT count(*) FROM sub_requests WHERE username = 'carol'")[0][0]
            return stored + len(errors) == self.N
        wait_for(settled, 30, 'every request stored or refused')
        for e in errors.values():
            self.assertEqual(e.get('from'), 'carol@localhost', to_str(e))
            self.assertEqual(err(e)[1], 'resource-constraint', to_str(e))
        refused = len(errors)
        self.assertGreater(refused, 0, 'all %d requests of 4 KB were stored' % self.N)
        self.assertLess(refused, self.N)
        stored = [r[0] for r in self.query("SELECT length(stanza) + length(jid) FROM sub_requests "
                                            "WHERE username = 'carol'")]
        self.assertEqual(len(stored), self.N - refused)
        self.assertLessEqual(sum(stored), 256 * 1024)

    def query(self, sql):
        return self.s.db_rows(sql)


if __name__ == '__main__':
    main()
