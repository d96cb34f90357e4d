"""Helpers for the IM-core integration tests (rosters, subscriptions, presence,
messages, offline storage, blocking, last activity). Standard library only;
builds on hearth.py without changing it.

Conventions:
- IMClient keeps every stanza it reads and has not handed to a test in
  self.backlog, so nothing that arrives while waiting for something else is
  lost. wait(pred) takes the first matching stanza (backlog first, then the
  socket, with a deadline).
- Server pings (XEP-0199) are answered automatically and not kept; roster and
  block-list pushes are answered with a result (RFC 6121 2.1.6) and kept.
- Checking that something does NOT arrive: sync() sends a ping to the server
  and waits for its result; the server handles a session's stanzas in order,
  so whatever it had queued for us before the result is in the backlog then.
  settle(*clients) syncs the sender(s) first, then the receivers.
"""

import os
import re
import sqlite3
import sys
import time
import unittest
import xml.etree.ElementTree as ET

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_PING, NS_STANZAS, NS_STREAM, Client, Server,
                    StreamClosed, q, stanza_error, to_str, wait_for, xml_escape)

NS_ROSTER = 'jabber:iq:roster'
NS_ROSTERVER = 'urn:xmpp:features:rosterver'
NS_PREAPPROVAL = 'urn:xmpp:features:pre-approval'
NS_SID = 'urn:xmpp:sid:0'
NS_DELAY = 'urn:xmpp:delay'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'
NS_LAST = 'jabber:iq:last'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_RECEIPTS = 'urn:xmpp:receipts'
NS_VERSION = 'jabber:iq:version'

TIMEOUT = 5.0
IQ = q(NS_CLIENT, 'iq')
MESSAGE = q(NS_CLIENT, 'message')
PRESENCE = q(NS_CLIENT, 'presence')
SUB_TYPES = ('subscribe', 'subscribed', 'unsubscribe', 'unsubscribed')
DELAY_STAMP = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')


def note(text):
    sys.stderr.write('NOTE: %s\n' % text)
    sys.stderr.flush()


def bare(jid):
    return jid.split('/', 1)[0] if jid else jid


def jid_of(user):
    return user if '@' in user else '%s@%s' % (user, DOMAIN)


# --------------------------------------------------------------------------
# Predicates over stanzas


def is_iq(s, type_=None, id_=None):
    return (s.tag == IQ and (type_ is None or s.get('type') == type_)
            and (id_ is None or s.get('id') == id_))


def is_msg(s, id_=None, from_=None, type_=None):
    return (s.tag == MESSAGE and (id_ is None or s.get('id') == id_)
            and (from_ is None or s.get('from') == from_)
            and (type_ is None or (s.get('type') or 'normal') == type_))


def is_pres(s, from_=None, type_=None, from_bare=None):
    """type_=None matches available presence only (no type attribute);
    type_='*' matches any type."""
    if s.tag != PRESENCE:
        return False
    if type_ != '*' and s.get('type') != type_:
        return False
    if from_ is not None and s.get('from') != from_:
        return False
    if from_bare is not None and bare(s.get('from')) != from_bare:
        return False
    return True


def is_sub(s, type_=None, from_=None):
    """A subscription-management presence (type_ one of SUB_TYPES, or any)."""
    return (s.tag == PRESENCE and s.get('type') in SUB_TYPES
            and (type_ is None or s.get('type') == type_)
            and (from_ is None or s.get('from') == from_))


def roster_query(s):
    return s.find(q(NS_ROSTER, 'query'))


def is_push(s, jid=None):
    if not (s.tag == IQ and s.get('type') == 'set'):
        return False
    qy = roster_query(s)
    if qy is None:
        return False
    if jid is None:
        return True
    items = qy.findall(q(NS_ROSTER, 'item'))
    return len(items) == 1 and items[0].get('jid') == jid


def is_block_push(s):
    return (s.tag == IQ and s.get('type') == 'set'
            and (s.find(q(NS_BLOCKING, 'block')) is not None
                 or s.find(q(NS_BLOCKING, 'unblock')) is not None))


def item_dict(el):
    groups = sorted((g.text or '') for g in el.findall(q(NS_ROSTER, 'group')))
    return {'jid': el.get('jid'), 'name': el.get('name'),
            'subscription': el.get('subscription') or 'none', 'ask': el.get('ask'),
            'approved': el.get('approved'), 'groups': groups}


def parse_items(query):
    out = {}
    if query is None:
        return out
    for el in query.findall(q(NS_ROSTER, 'item')):
        d = item_dict(el)
        if d['jid'] in out:
            raise AssertionError('roster lists %s twice: %s' % (d['jid'], to_str(query)))
        out[d['jid']] = d
    return out


def push_item(s):
    items = roster_query(s).findall(q(NS_ROSTER, 'item'))
    if len(items) != 1:
        raise AssertionError('a roster push carries exactly one item (RFC 6121 2.1.6): %s' % to_str(s))
    return item_dict(items[0])


def err(s):
    """(type, condition) of the stanza's error, or None."""
    return stanza_error(s)


def app_error(s, ns):
    e = s.find(q(NS_CLIENT, 'error'))
    if e is None:
        return None
    for child in e:
        if child.tag.startswith('{%s}' % ns):
            return child
    return None


def caps_xml(node='http://www.igniterealtime.org/projects/smack', ver='NfJ3flI83zSdUDzCEICtbypursw='):
    return "<c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>" % (NS_CAPS, node, ver)


# --------------------------------------------------------------------------
# Client


class IMClient(Client):
    """hearth.Client with a backlog, automatic answers and IM helpers."""

    def __init__(self, server=None, **kw):
        super().__init__(server, **kw)
        self.backlog = []
        self.user = None
        self.password = None
        self.interested = False   # requested the roster
        self.sent_presence = None  # the last broadcast presence we sent (XML)
        self.auto_answer_pings = True
        self.closed_seen = False

    # -- receiving ------------------------------------------------------------

    def _auto(self, s):
        """Answer what a client must answer; returns True when s is consumed."""
        if s.tag == IQ and s.get('type') == 'get' and s.find(q(NS_PING, 'ping')) is not None \
                and self.auto_answer_pings and s.get('from') in (DOMAIN, None):
            self.send("<iq type='result' id='%s' to='%s'/>" % (xml_escape(s.get('id') or ''), DOMAIN))
            return True
        if is_push(s) or is_block_push(s):
            frm = s.get('from')
            to = " to='%s'" % xml_escape(frm) if frm else ''
            self.send("<iq type='result' id='%s'%s/>" % (xml_escape(s.get('id') or ''), to))
        return False

    def _read(self, deadline):
        """One stanza from the socket, or None at the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not self.events:
                return None
            try:
                kind, elem = self.next_event(max(remaining, 0.001))
            except StreamClosed:
                raise
            except AssertionError:
                return None  # next_event's timeout
            if kind == 'stanza':
                if elem.tag == q(NS_STREAM, 'error'):
                    raise StreamClosed('%s: stream error %s; backlog %s'
                                       % (self.jid, to_str(elem), self.dump()))
                if self._auto(elem):
                    continue
                return elem
            if kind == 'header':
                continue
            raise StreamClosed('%s: stream ended (%s) while waiting; backlog %s' % (self.jid, kind, self.dump()))

    def pump(self, timeout=0.0):
        """Move whatever is readable now (or within timeout) into the backlog."""
        deadline = time.monotonic() + timeout
        while True:
            s = self._read(deadline)
            if s is None:
                return
            self.backlog.append(s)

    def dump(self, items=None):
        items = self.backlog if items is None else items
        return '[%s]' % ', '.join(to_str(s) for s in items[-12:])

    def wait(self, pred, timeout=TIMEOUT, what='a matching stanza'):
        for i, s in enumerate(self.backlog):
            if pred(s):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            s = self._read(deadline)
            if s is None:
                raise AssertionError('%s: no %s within %.1fs; unconsumed: %s'
                                     % (self.jid, what, timeout, self.dump()))
            if pred(s):
                return s
            self.backlog.append(s)

    def wait_n(self, pred, n, timeout=TIMEOUT, what='matching stanzas'):
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            got.append(self.wait(pred, max(deadline - time.monotonic(), 0.01),
                                 '%s (%d of %d)' % (what, len(got) + 1, n)))
        return got

    def take(self, pred=None):
        """Remove and return the backlog stanzas matching pred (all when None)."""
        keep, out = [], []
        for s in self.backlog:
            (out if pred is None or pred(s) else keep).append(s)
        self.backlog = keep
        return out

    def sync(self, timeout=TIMEOUT):
        """Round trip to the server; everything queued for us before it is
        in the backlog afterwards."""
        id_ = self.next_id('sync')
        self.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (id_, DOMAIN, NS_PING))
        r = self.wait(lambda s: is_iq(s, id_=id_) and s.get('type') in ('result', 'error'),
                      timeout, 'result of sync ping %s' % id_)
        if r.get('type') != 'result':
            raise AssertionError('%s: sync ping failed: %s' % (self.jid, to_str(r)))

    def expect_none(self, pred, what='stanza', sync=True):
        if sync:
            self.sync()
        bad = self.take(pred)
        if bad:
            raise AssertionError('%s: unexpected %s: %s' % (self.jid, what, self.dump(bad)))

    # -- IQ ------------------------------------------------------------------

    def iq(self, type_, payload='', to=None, timeout=TIMEOUT, id_=None):
        id_ = id_ or self.next_id('iq')
        attrs = "type='%s' id='%s'" % (type_, xml_escape(id_))
        if to:
            attrs += " to='%s'" % xml_escape(to)
        self.send('<iq %s>%s</iq>' % (attrs, payload))
        return self.wait(lambda s: is_iq(s, id_=id_) and s.get('type') in ('result', 'error'),
                         timeout, 'reply to iq %s' % id_)

    def iq_ok(self, type_, payload='', to=None, timeout=TIMEOUT):
        r = self.iq(type_, payload, to=to, timeout=timeout)
        if r.get('type') != 'result':
            raise AssertionError('%s: iq %s %s failed: %s' % (self.jid, type_, payload[:200], to_str(r)))
        return r

    # -- roster ----------------------------------------------------------------

    def roster_get(self, ver=None, timeout=TIMEOUT):
        attr = '' if ver is None else " ver='%s'" % xml_escape(ver)
        r = self.iq('get', "<query xmlns='%s'%s/>" % (NS_ROSTER, attr), timeout=timeout)
        if r.get('type') == 'result':
            self.interested = True
        return r

    def roster(self):
        """The roster as {jid: item dict}."""
        r = self.roster_get()
        if r.get('type') != 'result':
            raise AssertionError('%s: roster get failed: %s' % (self.jid, to_str(r)))
        return parse_items(roster_query(r))

    def item(self, jid):
        return self.roster().get(jid)

    def view(self, jid):
        """(subscription, ask) of jid in our roster; None when absent."""
        it = self.item(jid)
        return None if it is None else (it['subscription'], it['ask'])

    @staticmethod
    def item_xml(jid, name=None, groups=(), extra=''):
        attrs = "jid='%s'" % xml_escape(jid)
        if name is not None:
            attrs += " name='%s'" % xml_escape(name)
        if extra:
            attrs += ' ' + extra
        inner = ''.join('<group>%s</group>' % xml_escape(g) for g in groups)
        return '<item %s>%s</item>' % (attrs, inner)

    def roster_set(self, jid, name=None, groups=(), extra=''):
        return self.iq('set', "<query xmlns='%s'>%s</query>" % (NS_ROSTER, self.item_xml(jid, name, groups, extra)))

    def roster_remove(self, jid):
        return self.iq('set', "<query xmlns='%s'><item jid='%s' subscription='remove'/></query>"
                       % (NS_ROSTER, xml_escape(jid)))

    # -- presence --------------------------------------------------------------

    @staticmethod
    def presence_xml(type_=None, to=None, show=None, status=None, priority=None, children='', id_=None):
        attrs = []
        if id_:
            attrs.append("id='%s'" % xml_escape(id_))
        if to:
            attrs.append("to='%s'" % xml_escape(to))
        if type_:
            attrs.append("type='%s'" % type_)
        inner = ''
        if show:
            inner += '<show>%s</show>' % show
        if status is not None:
            inner += '<status>%s</status>' % xml_escape(status)
        if priority is not None:
            inner += '<priority>%s</priority>' % priority
        inner += children
        return '<presence%s>%s</presence>' % (''.join(' ' + a for a in attrs), inner) if inner \
            else '<presence%s/>' % ''.join(' ' + a for a in attrs)

    def presence(self, **kw):
        x = self.presence_xml(**kw)
        if kw.get('to') is None and kw.get('type_') in (None, 'unavailable'):
            self.sent_presence = x if kw.get('type_') is None else None
        self.send(x)
        return x

    def sub(self, type_, to):
        """Subscription management presence to a bare JID."""
        self.send("<presence to='%s' type='%s'/>" % (xml_escape(to), type_))

    # -- messages --------------------------------------------------------------

    def message(self, to, body=None, type_='chat', id_=None, children=''):
        id_ = id_ or self.next_id('m')
        inner = ('<body>%s</body>' % xml_escape(body) if body is not None else '') + children
        t = " type='%s'" % type_ if type_ else ''
        self.send("<message to='%s'%s id='%s'>%s</message>" % (xml_escape(to), t, xml_escape(id_), inner))
        return id_

    # -- blocking --------------------------------------------------------------

    def blocklist(self):
        r = self.iq('get', "<blocklist xmlns='%s'/>" % NS_BLOCKING)
        if r.get('type') != 'result':
            raise AssertionError('%s: blocklist get failed: %s' % (self.jid, to_str(r)))
        bl = r.find(q(NS_BLOCKING, 'blocklist'))
        if bl is None:
            raise AssertionError('blocklist result without <blocklist/>: %s' % to_str(r))
        return sorted(i.get('jid') for i in bl.findall(q(NS_BLOCKING, 'item')))

    def block(self, *jids):
        items = ''.join("<item jid='%s'/>" % xml_escape(j) for j in jids)
        return self.iq('set', "<block xmlns='%s'>%s</block>" % (NS_BLOCKING, items))

    def unblock(self, *jids):
        items = ''.join("<item jid='%s'/>" % xml_escape(j) for j in jids)
        return self.iq('set', "<unblock xmlns='%s'>%s</unblock>" % (NS_BLOCKING, items))

    # -- leaving ---------------------------------------------------------------

    def logout(self, unavailable=True, timeout=TIMEOUT):
        """Clean end: optional unavailable presence, </stream:stream>, and wait
        for the server's close."""
        if unavailable:
            self.send("<presence type='unavailable'/>")
        self.send('</stream:stream>')
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                kind, _ = self.next_event(max(deadline - time.monotonic(), 0.01))
            except AssertionError:
                if time.monotonic() >= deadline:
                    break
                continue
            if kind in ('close', 'eof'):
                break
        self.close()

    def drop(self):
        """Abrupt disconnect: close the socket without </stream:stream>."""
        self.close()


# --------------------------------------------------------------------------
# Subscription states (RFC 6121 Appendix A), from the user's point of view

STATES = ('none', 'none+out', 'none+in', 'none+out+in', 'to', 'to+in', 'from', 'from+out', 'both')


def mirror(state):
    """The contact's state when the user's is state: to<->from, out<->in."""
    base, *flags = state.split('+')
    base = {'to': 'from', 'from': 'to'}.get(base, base)
    flags = sorted({'out': 'in', 'in': 'out'}[f] for f in flags)
    flags.sort(key=lambda f: 0 if f == 'out' else 1)
    return '+'.join([base] + flags)


def view_of(state):
    """What a roster item shows: (subscription, ask); pending-in is invisible."""
    base, *flags = state.split('+')
    return (base, 'subscribe' if 'out' in flags else None)


def has_to(state):
    return state.split('+')[0] in ('to', 'both')


def has_from(state):
    return state.split('+')[0] in ('from', 'both')


def has_in(state):
    return 'in' in state.split('+')[1:]


# RFC 6121 A.2 (outbound, at the user's server): new state of the user.
OUTBOUND = {
    'subscribe': {'none': 'none+out', 'none+out': None, 'none+in': 'none+out+in', 'none+out+in': None,
                  'to': None, 'to+in': None, 'from': 'from+out', 'from+out': None, 'both': None},
    'unsubscribe': {'none': None, 'none+out': 'none', 'none+in': None, 'none+out+in': 'none+in',
                    'to': 'none', 'to+in': 'none+in', 'from': None, 'from+out': 'from', 'both': 'from'},
    'subscribed': {'none': None, 'none+out': None, 'none+in': 'from', 'none+out+in': 'from+out',
                   'to': None, 'to+in': 'both', 'from': None, 'from+out': None, 'both': None},
    'unsubscribed': {'none': None, 'none+out': None, 'none+in': 'none', 'none+out+in': 'none+out',
                     'to': None, 'to+in': 'to', 'from': 'none', 'from+out': 'none+out', 'both': 'to'},
}

# RFC 6121 A.3 (inbound, at the contact's server): (deliver?, new state of the contact).
INBOUND = {
    'subscribe': {'none': (True, 'none+in'), 'none+out': (True, 'none+out+in'), 'none+in': (False, None),
                  'none+out+in': (False, None), 'to': (True, 'to+in'), 'to+in': (False, None),
                  'from': (False, None), 'from+out': (False, None), 'both': (False, None)},
    'unsubscribe': {'none': (False, None), 'none+out': (False, None), 'none+in': (True, 'none'),
                    'none+out+in': (True, 'none+out'), 'to': (False, None), 'to+in': (True, 'to'),
                    'from': (True, 'none'), 'from+out': (True, 'none+out'), 'both': (True, 'to')},
    'subscribed': {'none': (False, None), 'none+out': (True, 'to'), 'none+in': (False, None),
                   'none+out+in': (True, 'to+in'), 'to': (False, None), 'to+in': (False, None),
                   'from': (False, None), 'from+out': (True, 'both'), 'both': (False, None)},
    'unsubscribed': {'none': (False, None), 'none+out': (True, 'none'), 'none+in': (False, None),
                     'none+out+in': (True, 'none+in'), 'to': (True, 'none'), 'to+in': (True, 'none+in'),
                     'from': (False, None), 'from+out': (True, 'from'), 'both': (True, 'from')},
}


def _selfcheck():
    for t in OUTBOUND:
        for s in STATES:
            new_user = OUTBOUND[t][s] or s
            deliver, new_contact = INBOUND[t][mirror(s)]
            new_contact = new_contact or mirror(s)
            assert mirror(new_user) == new_contact, (t, s, new_user, new_contact)
    for s in STATES:
        assert mirror(mirror(s)) == s, s


_selfcheck()


# --------------------------------------------------------------------------
# Test case base


class IMTestCase(unittest.TestCase):
    users = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver'}
    settings = {}

    def start_server(self, users=None, **settings):
        kw = dict(self.settings)
        kw.update(settings)
        s = Server(users=self.users if users is None else users, **kw)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()
        finally:
            s.close()

    def connect(self, server, user, resource=None, roster=True, presence=True, priority=None,
                status=None, children='', pw=None, **login):
        c = IMClient(server)
        self.addCleanup(c.close)
        c.user = user
        c.password = pw or self.users[user]
        c.login(user, c.password, resource=resource, **login)
        if roster:
            r = c.roster_get()
            self.assertEqual(r.get('type'), 'result', to_str(r))
        if presence:
            c.presence(priority=priority, status=status, children=children)
        c.sync()
        return c

    def settle(self, *clients):
        """Sync every client, in the order given (senders first)."""
        for c in clients:
            c.sync()

    # -- assertions ----------------------------------------------------------

    def assertView(self, c, jid, state, msg=''):
        """c's roster shows jid as state (RFC 6121 A: pending-in is not shown;
        'none' may also be no item at all)."""
        v = c.view(jid)
        want = view_of(state)
        if want == ('none', None) and v is None:
            return
        self.assertEqual(v, want, '%s: roster item %s is %r, expected %s %r %s'
                         % (c.jid, jid, v, state, want, msg))

    def wait_view(self, c, jid, state, timeout=TIMEOUT):
        """Poll c's roster until jid shows state (the change may be applied
        a moment after the stanza that caused it was answered)."""
        want = view_of(state)
        last = [None]

        def ok():
            v = c.view(jid)
            last[0] = v
            return v == want or (want == ('none', None) and v is None)
        try:
            wait_for(ok, timeout, 'roster', interval=0.05)
        except AssertionError:
            raise AssertionError('%s: roster item %s stays %r, expected %s %r'
                                 % (c.jid, jid, last[0], state, want))

    def check_push(self, s, user_bare):
        """RFC 6121 2.1.6: a push has no 'from' or the user's bare JID, and one item."""
        self.assertIn(s.get('from'), (None, user_bare), 'roster push from a stranger: %s' % to_str(s))
        self.assertTrue(s.get('id'), 'roster push without id: %s' % to_str(s))
        return push_item(s)

    def wait_push(self, c, jid, state=None, subscription=None, timeout=TIMEOUT):
        """The next push about jid (matching state's view when given)."""
        def pred(s):
            if not is_push(s, jid):
                return False
            it = push_item(s)
            if state is not None and (it['subscription'], it['ask']) != view_of(state):
                return False
            if subscription is not None and it['subscription'] != subscription:
                return False
            return True
        s = c.wait(pred, timeout, 'roster push for %s%s' % (jid, ' as ' + state if state else ''))
        self.check_push(s, bare(c.jid))
        return push_item(s)

    def roster_ver(self, r):
        qy = roster_query(r)
        return None if qy is None else qy.get('ver')


# --------------------------------------------------------------------------
# Establishing subscription states with real flows


def make_state(tc, a, b, state):
    """Bring user a (IMClient, interested and available) to `state` towards
    contact b (same), with real presence stanzas; every step is awaited.
    Afterwards both backlogs are emptied."""
    aj, bj = bare(a.jid), bare(b.jid)
    base, *flags = state.split('+')

    def a_to_b():  # a subscribes to b and b approves
        a.sub('subscribe', bj)
        tc.wait_push(a, bj, subscription=None)
        b.wait(lambda s: is_sub(s, 'subscribe', aj), what='subscribe from %s' % aj)
        b.sub('subscribed', aj)
        a.wait(lambda s: is_sub(s, 'subscribed', bj), what='subscribed from %s' % bj)

    def b_to_a():
        b.sub('subscribe', aj)
        a.wait(lambda s: is_sub(s, 'subscribe', bj), what='subscribe from %s' % bj)
        a.sub('subscribed', bj)
        b.wait(lambda s: is_sub(s, 'subscribed', aj), what='subscribed from %s' % aj)

    if base in ('to', 'both'):
        a_to_b()
        tc.wait_view(a, bj, 'to')
    if base in ('from', 'both'):
        b_to_a()
        tc.wait_view(a, bj, base)
    if 'out' in flags:
        a.sub('subscribe', bj)
        b.wait(lambda s: is_sub(s, 'subscribe', aj), what='subscribe from %s' % aj)
    if 'in' in flags:
        b.sub('subscribe', aj)
        a.wait(lambda s: is_sub(s, 'subscribe', bj), what='subscribe from %s' % bj)
    tc.wait_view(a, bj, state)
    tc.wait_view(b, aj, mirror(state))
    tc.settle(a, b, a, b)
    a.take()
    b.take()


# --------------------------------------------------------------------------
# Offline storage in the database (read-only)


def db_path(server):
    return os.path.join(server.data_dir, 'hearth.db')


def offline_count(server, user):
    """Rows in the offline table for user (matched as local part or bare JID);
    None while the table does not exist."""
    local = user.split('@')[0]
    if server.settings.get('storage.driver') == 'pgsql':
        try:
            rows = server.db_rows('SELECT count(*) FROM offline_messages WHERE username IN (?, ?)',
                                  (local, jid_of(local)))
        except AssertionError:
            return None  # not migrated yet
        return rows[0][0]
    path = db_path(server)
    if not os.path.exists(path):
        return None
    try:
        con = sqlite3.connect('file:%s?mode=ro' % path, uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        # the brief named the table 'offline'; the schema (migration 2) calls
        # it offline_messages: take whichever exists
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('offline', 'offline_messages')")]
        if not names:
            return None
        local = user.split('@')[0]
        row = con.execute('SELECT COUNT(*) FROM "%s" WHERE username IN (?, ?)' % names[0],
                          (local, jid_of(local))).fetchone()
        return row[0]
    except sqlite3.Error:
        return None
    finally:
        con.close()


def wait_offline_rows(server, user, n, timeout=TIMEOUT):
    last = [None]

    def ok():
        last[0] = offline_count(server, user)
        return last[0] is not None and last[0] >= n
    try:
        wait_for(ok, timeout, 'offline rows', interval=0.05)
    except AssertionError:
        raise AssertionError('offline table holds %r rows for %s, expected %d' % (last[0], user, n))
    return last[0]


def kill_and_restart(server):
    """SIGKILL hearthd and start it again on the same data directory."""
    server.kill()
    server.start()
    return server
