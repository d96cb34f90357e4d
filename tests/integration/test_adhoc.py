"""Ad-hoc commands (XEP-0050) with service administration (XEP-0133) on the
server's domain: discovery (hidden from non-admins), the flow of each command
(execute, the form, complete; cancel), XEP-0050's errors (malformed-action,
bad-action, bad-payload, bad-sessionid, session-expired, forbidden,
item-not-found), bad input answered with an error note and nothing stored,
and what the commands do: accounts added, deleted (their sessions ended),
passwords changed, online users counted and listed across workers, an
announcement to every online session, sessions ended."""

import re
import time
import unittest
import xml.etree.ElementTree as ET

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_STREAM, Client, SaslFailure, Server,
                    StreamClosed, main, q, stanza_error, stream_error_condition, to_str, xml_escape)
from imlib import IMClient, app_error, is_msg

NS_COMMANDS = 'http://jabber.org/protocol/commands'
NS_DATA = 'jabber:x:data'
NS_ADMIN = 'http://jabber.org/protocol/admin'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
COMMANDS = ['add-user', 'delete-user', 'end-user-session', 'change-user-password',
            'get-registered-users-num', 'get-online-users-num', 'get-online-users-list', 'announce']
USERS = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver'}
ADMINS = {'root': 'rootpass'}
TIMEOUT = 5.0


def node(name):
    return '%s#%s' % (NS_ADMIN, name)


def jid(user):
    return '%s@%s' % (user, DOMAIN)


def field(var, *values):
    return "<field var='%s'>%s</field>" % (
        var, ''.join('<value>%s</value>' % xml_escape(v) for v in values))


def form(*fields, type_='submit'):
    return ("<x xmlns='%s' type='%s'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>%s</x>"
            % (NS_DATA, type_, NS_ADMIN, ''.join(fields)))


def command_xml(name, action=None, sessionid=None, payload='', raw_node=None):
    attrs = " node='%s'" % xml_escape(raw_node if raw_node is not None else node(name))
    if action is not None:
        attrs += " action='%s'" % action
    if sessionid is not None:
        attrs += " sessionid='%s'" % xml_escape(sessionid)
    return "<command xmlns='%s'%s>%s</command>" % (NS_COMMANDS, attrs, payload)


class Reply:
    """A command's result: status, sessionid, notes [(type, text)], the form's fields."""

    def __init__(self, iq):
        self.iq = iq
        self.cmd = iq.find(q(NS_COMMANDS, 'command'))
        assert self.cmd is not None, to_str(iq)
        self.status = self.cmd.get('status')
        self.sessionid = self.cmd.get('sessionid')
        self.node = self.cmd.get('node')
        self.notes = [(n.get('type'), n.text or '') for n in self.cmd.findall(q(NS_COMMANDS, 'note'))]
        self.x = self.cmd.find(q(NS_DATA, 'x'))
        self.fields = {}
        self.field_types = {}
        self.required = set()
        if self.x is not None:
            for f in self.x.findall(q(NS_DATA, 'field')):
                self.fields[f.get('var')] = [v.text or '' for v in f.findall(q(NS_DATA, 'value'))]
                self.field_types[f.get('var')] = f.get('type')
                if f.find(q(NS_DATA, 'required')) is not None:
                    self.required.add(f.get('var'))
        self.actions = self.cmd.find(q(NS_COMMANDS, 'actions'))

    def __repr__(self):
        return to_str(self.iq)


def db_rows(server, user):
    return server.db_rows('SELECT count(*) FROM accounts WHERE username = ?', (user,))[0][0]


def db_count(server):
    return server.db_rows('SELECT count(*) FROM accounts')[0][0]


class AdhocBase(unittest.TestCase):
    settings = {}

    def start(self, **settings):
        kw = dict(self.settings)
        kw.update(settings)
        s = Server(users=USERS, admins=ADMINS, **kw)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()
        finally:
            s.close()

    def connect(self, s, user, pw=None, resource=None, presence=True):
        c = IMClient(s)
        self.addCleanup(c.close)
        c.user = user
        c.login(user, pw or USERS.get(user) or ADMINS[user], resource=resource)
        if presence:
            c.send('<presence/>')
        c.sync()
        return c

    def can_login(self, s, user, pw):
        c = Client(s)
        try:
            c.login(user, pw, bind=False)
            return True
        except SaslFailure as e:
            self.assertEqual(e.condition, 'not-authorized', to_str(e.element))
            return False
        finally:
            c.close()

    # -- commands ------------------------------------------------------------

    def run_cmd(self, c, name, **kw):
        return c.iq('set', command_xml(name, **kw), to=DOMAIN)

    def ok(self, c, name, **kw):
        r = self.run_cmd(c, name, **kw)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(r.get('from'), DOMAIN, to_str(r))
        rep = Reply(r)
        self.assertEqual(rep.node, node(name) if 'raw_node' not in kw else kw['raw_node'], to_str(r))
        self.assertTrue(rep.sessionid, to_str(r))
        return rep

    def start_form(self, c, name):
        rep = self.ok(c, name)
        self.assertEqual(rep.status, 'executing', rep)
        self.assertIsNotNone(rep.x, rep)
        self.assertEqual(rep.x.get('type'), 'form', rep)
        self.assertEqual(rep.fields.get('FORM_TYPE'), [NS_ADMIN], rep)
        self.assertIsNotNone(rep.actions, rep)
        self.assertEqual(rep.actions.get('execute'), 'complete', rep)
        self.assertIsNotNone(rep.actions.find(q(NS_COMMANDS, 'complete')), rep)
        return rep

    def submit(self, c, name, *fields, action='complete', sessionid=None):
        """Execute name, then submit fields in its session: the completed reply."""
        if sessionid is None:
            sessionid = self.start_form(c, name).sessionid
        rep = self.ok(c, name, action=action, sessionid=sessionid, payload=form(*fields))
        self.assertEqual(rep.status, 'completed', rep)
        self.assertEqual(rep.sessionid, sessionid, rep)
        return rep

    def assert_error(self, r, cond, app=None, etype=None):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        got = stanza_error(r)
        self.assertEqual(got[1], cond, to_str(r))
        if etype:
            self.assertEqual(got[0], etype, to_str(r))
        a = app_error(r, NS_COMMANDS)
        if app is None:
            self.assertIsNone(a, to_str(r))
        else:
            self.assertIsNotNone(a, to_str(r))
            self.assertEqual(a.tag, q(NS_COMMANDS, app), to_str(r))
        self.assertNotIn('secret', to_str(r), 'a password echoed: %s' % to_str(r))

    def assert_note(self, rep, type_, text):
        self.assertTrue(any(t == type_ and text in s for t, s in rep.notes),
                        'no %s note with %r: %s' % (type_, text, rep))

    def wait_stream_error(self, c, cond, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, elem = c.next_event(max(deadline - time.monotonic(), 0.01))
            except StreamClosed:
                raise
            if kind == 'stanza' and elem.tag == q(NS_STREAM, 'error'):
                self.assertEqual(stream_error_condition(elem), cond, to_str(elem))
                return
            if kind in ('close', 'eof'):
                self.fail('%s: stream ended without a stream error' % c.jid)


class DiscoTest(AdhocBase):
    def test_admin_discovers_the_commands(self):
        s = self.start()
        root = self.connect(s, 'root')
        r = root.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
        feats = [f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_COMMANDS, feats, to_str(r))

        r = root.iq('get', "<query xmlns='%s' node='%s'/>" % (NS_DISCO_ITEMS, NS_COMMANDS), to=DOMAIN)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        qy = r.find(q(NS_DISCO_ITEMS, 'query'))
        self.assertEqual(qy.get('node'), NS_COMMANDS, to_str(r))
        items = qy.findall(q(NS_DISCO_ITEMS, 'item'))
        self.assertEqual(sorted(i.get('node') for i in items), sorted(node(n) for n in COMMANDS))
        for i in items:
            self.assertEqual(i.get('jid'), DOMAIN, to_str(r))
            self.assertTrue(i.get('name'), to_str(r))

        for name in COMMANDS:
            r = root.iq('get', "<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, node(name)), to=DOMAIN)
            self.assertEqual(r.get('type'), 'result', to_str(r))
            qy = r.find(q(NS_DISCO_INFO, 'query'))
            self.assertEqual(qy.get('node'), node(name))
            ident = qy.find(q(NS_DISCO_INFO, 'identity'))
            self.assertEqual((ident.get('category'), ident.get('type')), ('automation', 'command-node'))
            feats = [f.get('var') for f in qy.findall(q(NS_DISCO_INFO, 'feature'))]
            self.assertEqual(sorted(feats), sorted([NS_COMMANDS, NS_DATA]), to_str(r))

        # the list's own node, and a node that is no command
        r = root.iq('get', "<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, NS_COMMANDS), to=DOMAIN)
        ident = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_DISCO_INFO, 'identity')))
        self.assertEqual((ident.get('category'), ident.get('type')), ('automation', 'command-list'))
        r = root.iq('get', "<query xmlns='%s' node='%s#nothing'/>" % (NS_DISCO_INFO, NS_ADMIN), to=DOMAIN)
        self.assert_error(r, 'item-not-found')

    def test_hidden_from_non_admins(self):
        s = self.start()
        bob = self.connect(s, 'bob')
        r = bob.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
        self.assertIn(NS_COMMANDS, [f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))])
        r = bob.iq('get', "<query xmlns='%s' node='%s'/>" % (NS_DISCO_ITEMS, NS_COMMANDS), to=DOMAIN)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        qy = r.find(q(NS_DISCO_ITEMS, 'query'))
        self.assertEqual(qy.get('node'), NS_COMMANDS)
        self.assertEqual(len(qy), 0, to_str(r))
        r = bob.iq('get', "<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, node('add-user')), to=DOMAIN)
        self.assert_error(r, 'item-not-found')


class FlowTest(AdhocBase):
    def test_non_admin_is_refused(self):
        s = self.start()
        bob = self.connect(s, 'bob')
        for name in COMMANDS:
            self.assert_error(self.run_cmd(bob, name), 'forbidden', etype='auth')
        # a filled form in a made-up session changes nothing either
        r = self.run_cmd(bob, 'add-user', action='complete', sessionid='0123',
                         payload=form(field('accountjid', jid('mallory')), field('password', 'secret1'),
                                      field('password-verify', 'secret1')))
        self.assert_error(r, 'forbidden')
        r = self.run_cmd(bob, 'delete-user', action='complete', sessionid='0123',
                         payload=form(field('accountjids', jid('alice'))))
        self.assert_error(r, 'forbidden')
        self.assertEqual(db_rows(s, 'mallory'), 0)
        self.assertEqual(db_rows(s, 'alice'), 1)
        # an admin's session is not a non-admin's to complete
        root = self.connect(s, 'root')
        sid = self.start_form(root, 'delete-user').sessionid
        r = self.run_cmd(bob, 'delete-user', action='complete', sessionid=sid,
                         payload=form(field('accountjids', jid('alice'))))
        self.assert_error(r, 'forbidden')
        self.assertEqual(db_rows(s, 'alice'), 1)

    def test_cancel(self):
        s = self.start()
        root = self.connect(s, 'root')
        sid = self.start_form(root, 'add-user').sessionid
        rep = self.ok(root, 'add-user', action='cancel', sessionid=sid)
        self.assertEqual(rep.status, 'canceled', rep)
        self.assertEqual(rep.sessionid, sid)
        r = self.run_cmd(root, 'add-user', action='complete', sessionid=sid,
                         payload=form(field('accountjid', jid('erin')), field('password', 'secret1'),
                                      field('password-verify', 'secret1')))
        self.assert_error(r, 'bad-request', 'bad-sessionid')
        self.assertEqual(db_rows(s, 'erin'), 0)

    def test_protocol_errors(self):
        s = self.start()
        root = self.connect(s, 'root', resource='one')
        other = self.connect(s, 'root', resource='two')
        add = form(field('accountjid', jid('erin')), field('password', 'secret1'),
                   field('password-verify', 'secret1'))
        # unknown node; an action nobody knows; no sessionid with an action that needs one
        self.assert_error(self.run_cmd(root, None, raw_node=node('reboot-the-world')), 'item-not-found')
        self.assert_error(self.run_cmd(root, 'add-user', action='jump'), 'bad-request', 'malformed-action')
        self.assert_error(self.run_cmd(root, 'add-user', action='complete', payload=add),
                          'bad-request', 'bad-sessionid')
        self.assert_error(self.run_cmd(root, 'add-user', action='cancel'), 'bad-request', 'bad-sessionid')
        # a command is executed with a set
        r = root.iq('get', command_xml('add-user'), to=DOMAIN)
        self.assert_error(r, 'bad-request')

        sid = self.start_form(root, 'add-user').sessionid
        # made-up ids; the session from another resource; the session under another node
        self.assert_error(self.run_cmd(root, 'add-user', action='complete', sessionid='f' * 32, payload=add),
                          'bad-request', 'bad-sessionid')
        self.assert_error(self.run_cmd(other, 'add-user', action='complete', sessionid=sid, payload=add),
                          'bad-request', 'bad-sessionid')
        self.assert_error(self.run_cmd(root, 'change-user-password', action='complete', sessionid=sid,
                                       payload=add), 'bad-request', 'bad-sessionid')
        # one stage: neither prev nor next; the session stays open
        self.assert_error(self.run_cmd(root, 'add-user', action='prev', sessionid=sid), 'bad-request', 'bad-action')
        self.assert_error(self.run_cmd(root, 'add-user', action='next', sessionid=sid, payload=add),
                          'bad-request', 'bad-action')
        # no form, a form that is not submitted, a missing required field: bad-payload
        self.assert_error(self.run_cmd(root, 'add-user', action='complete', sessionid=sid),
                          'bad-request', 'bad-payload')
        self.assert_error(self.run_cmd(root, 'add-user', action='complete', sessionid=sid,
                                       payload=form(field('accountjid', jid('erin')), type_='form')),
                          'bad-request', 'bad-payload')
        self.assertEqual(db_rows(s, 'erin'), 0)
        # still open: 'execute' runs the default action (complete)
        rep = self.submit(root, 'add-user', field('accountjid', jid('erin')), field('password', 'secret1'),
                          field('password-verify', 'secret1'), action='execute', sessionid=sid)
        self.assert_note(rep, 'info', jid('erin'))
        self.assertEqual(db_rows(s, 'erin'), 1)
        # completed: the session is gone
        self.assert_error(self.run_cmd(root, 'add-user', action='complete', sessionid=sid, payload=add),
                          'bad-request', 'bad-sessionid')

    def test_sessions_end_with_their_stream(self):
        s = self.start()
        root = self.connect(s, 'root', resource='desk')
        sid = self.start_form(root, 'add-user').sessionid
        root.logout()
        # the same full JID again: a new session, which the old command session is not bound to
        root = self.connect(s, 'root', resource='desk')
        r = self.run_cmd(root, 'add-user', action='complete', sessionid=sid,
                         payload=form(field('accountjid', jid('erin')), field('password', 'secret1'),
                                      field('password-verify', 'secret1')))
        self.assert_error(r, 'bad-request', 'bad-sessionid')
        self.assertEqual(db_rows(s, 'erin'), 0)

    def test_sessions_bounded_per_user(self):
        s = self.start()
        root = self.connect(s, 'root')
        sids = [self.start_form(root, 'add-user').sessionid for _ in range(8)]
        self.assertEqual(len(set(sids)), 8)
        self.assert_error(self.run_cmd(root, 'add-user'), 'resource-constraint')
        self.ok(root, 'add-user', action='cancel', sessionid=sids[0])
        self.start_form(root, 'add-user')

    def test_session_expires(self):
        s = self.start(adhoc__session_timeout=1)
        root = self.connect(s, 'root')
        sid = self.start_form(root, 'add-user').sessionid
        # prev is refused with bad-action while the session lives (it stays open), and with
        # session-expired once it has expired
        deadline = time.monotonic() + 10
        while True:
            r = self.run_cmd(root, 'add-user', action='prev', sessionid=sid)
            if app_error(r, NS_COMMANDS) is not None and app_error(r, NS_COMMANDS).tag == q(NS_COMMANDS, 'session-expired'):
                break
            self.assert_error(r, 'bad-request', 'bad-action')
            self.assertLess(time.monotonic(), deadline, 'the session never expired')
            time.sleep(0.1)
        self.assert_error(r, 'not-allowed', 'session-expired', etype='cancel')
        # told once: then it is no session at all, and nothing was stored
        r = self.run_cmd(root, 'add-user', action='complete', sessionid=sid,
                         payload=form(field('accountjid', jid('erin')), field('password', 'secret1'),
                                      field('password-verify', 'secret1')))
        self.assert_error(r, 'bad-request', 'bad-sessionid')
        self.assertEqual(db_rows(s, 'erin'), 0)


class AccountsTest(AdhocBase):
    def test_add_user_then_log_in(self):
        s = self.start()
        root = self.connect(s, 'root')
        rep = self.start_form(root, 'add-user')
        self.assertEqual(rep.required, {'accountjid', 'password', 'password-verify'}, rep)
        self.assertEqual(rep.field_types['accountjid'], 'jid-single')
        self.assertEqual(rep.field_types['password'], 'text-private')
        rep = self.submit(root, 'add-user', field('accountjid', jid('Erin')), field('password', 'secret1'),
                          field('password-verify', 'secret1'), sessionid=rep.sessionid)
        self.assert_note(rep, 'info', jid('erin'))
        self.assertEqual(db_rows(s, 'erin'), 1)
        erin = self.connect(s, 'erin', pw='secret1')
        self.assertEqual(erin.jid.split('/')[0], jid('erin'))
        # again: it exists, and its password stays
        rep = self.submit(root, 'add-user', field('accountjid', jid('erin')), field('password', 'other22'),
                          field('password-verify', 'other22'))
        self.assert_note(rep, 'error', 'already exists')
        self.assertTrue(self.can_login(s, 'erin', 'secret1'))
        self.assertFalse(self.can_login(s, 'erin', 'other22'))

    def test_add_user_bad_input(self):
        s = self.start()
        root = self.connect(s, 'root')
        before = db_count(s)
        cases = [
            ((field('accountjid', 'erin@@%s' % DOMAIN), field('password', 'secret1'),
              field('password-verify', 'secret1')), 'not a valid JID'),
            ((field('accountjid', 'erin@elsewhere.example'), field('password', 'secret1'),
              field('password-verify', 'secret1')), 'not an account of this server'),
            ((field('accountjid', DOMAIN), field('password', 'secret1'),
              field('password-verify', 'secret1')), 'not an account of this server'),
            ((field('accountjid', jid('erin') + '/res'), field('password', 'secret1'),
              field('password-verify', 'secret1')), 'names a resource'),
            ((field('accountjid', jid('erin')), field('password', 'secret1'),
              field('password-verify', 'secret2')), 'do not match'),
            ((field('accountjid', jid('erin')), field('password', 'abc'),
              field('password-verify', 'abc')), 'too short'),
        ]
        for fields, text in cases:
            rep = self.submit(root, 'add-user', *fields)
            self.assert_note(rep, 'error', text)
            self.assertNotIn('secret', to_str(rep.iq))
        # a required field left out: bad-payload, and the session stays for a retry
        sid = self.start_form(root, 'add-user').sessionid
        r = self.run_cmd(root, 'add-user', action='complete', sessionid=sid,
                         payload=form(field('accountjid', jid('erin')), field('password', 'secret1')))
        self.assert_error(r, 'bad-request', 'bad-payload')
        self.assertEqual(db_count(s), before)
        self.assertEqual(db_rows(s, 'erin'), 0)
        rep = self.submit(root, 'add-user', field('accountjid', jid('erin')), field('password', 'secret1'),
                          field('password-verify', 'secret1'), sessionid=sid)
        self.assert_note(rep, 'info', jid('erin'))
        self.assertEqual(db_rows(s, 'erin'), 1)

    def test_change_user_password(self):
        s = self.start()
        root = self.connect(s, 'root')
        rep = self.start_form(root, 'change-user-password')
        self.assertEqual(rep.required, {'accountjid', 'password'}, rep)
        rep = self.submit(root, 'change-user-password', field('accountjid', jid('bob')),
                          field('password', 'newbuilder'), sessionid=rep.sessionid)
        self.assert_note(rep, 'info', jid('bob'))
        self.assertTrue(self.can_login(s, 'bob', 'newbuilder'))
        self.assertFalse(self.can_login(s, 'bob', 'builder'))
        rep = self.submit(root, 'change-user-password', field('accountjid', jid('nobody')),
                          field('password', 'newbuilder'))
        self.assert_note(rep, 'error', 'does not exist')
        self.assertEqual(db_rows(s, 'nobody'), 0)
        rep = self.submit(root, 'change-user-password', field('accountjid', 'bob@'),
                          field('password', 'newbuilder'))
        self.assert_note(rep, 'error', 'not a valid JID')

    def test_delete_user(self):
        s = self.start()
        root = self.connect(s, 'root')
        carol = self.connect(s, 'carol')
        carol2 = self.connect(s, 'carol', resource='second')
        rep = self.start_form(root, 'delete-user')
        self.assertEqual(rep.required, {'accountjids'}, rep)
        self.assertEqual(rep.field_types['accountjids'], 'jid-multi')
        rep = self.submit(root, 'delete-user', field('accountjids', jid('carol'), jid('ghost')),
                          sessionid=rep.sessionid)
        self.assert_note(rep, 'info', 'deleted: %s' % jid('carol'))
        self.assert_note(rep, 'error', 'no such account: %s' % jid('ghost'))
        # what in-band removal does: every session ends, the account is gone
        self.wait_stream_error(carol, 'not-authorized')
        self.wait_stream_error(carol2, 'not-authorized')
        self.assertEqual(db_rows(s, 'carol'), 0)
        self.assertFalse(self.can_login(s, 'carol', USERS['carol']))
        # only absent accounts: an error note, nothing else removed
        before = db_count(s)
        rep = self.submit(root, 'delete-user', field('accountjids', jid('ghost')))
        self.assertEqual(rep.notes, [('error', 'no such account: %s' % jid('ghost'))])
        # one malformed JID among good ones: nothing at all is deleted
        rep = self.submit(root, 'delete-user', field('accountjids', jid('alice'), 'bad@@jid'))
        self.assert_note(rep, 'error', 'not a valid JID')
        rep = self.submit(root, 'delete-user', field('accountjids', jid('alice'), 'x@other.example'))
        self.assert_note(rep, 'error', 'not an account of this server')
        self.assertEqual(db_count(s), before)
        self.assertEqual(db_rows(s, 'alice'), 1)
        self.assertTrue(self.can_login(s, 'alice', USERS['alice']))


class OnlineTest(AdhocBase):
    def online(self, s, *users):
        return {u: self.connect(s, u) for u in users}

    def test_counts_and_lists(self):
        s = self.start()
        root = self.connect(s, 'root')
        clients = self.online(s, 'alice', 'bob', 'dave')
        self.connect(s, 'bob', resource='phone')  # two sessions, one user
        # the users counted are homed on both workers: the count is gathered from each
        homes = set(re.findall(r'bound \S+ on worker (\d+)', s.log_text()))
        self.assertEqual(homes, {'0', '1'}, 'the online users all live on one worker')
        rep = self.ok(root, 'get-online-users-num')
        self.assertEqual(rep.status, 'completed', rep)
        self.assertEqual(rep.x.get('type'), 'result', rep)
        self.assertEqual(rep.fields.get('FORM_TYPE'), [NS_ADMIN], rep)
        self.assertEqual(rep.fields['onlineusersnum'], ['4'], rep)

        rep = self.ok(root, 'get-registered-users-num')
        self.assertEqual(rep.status, 'completed', rep)
        self.assertEqual(rep.fields['registeredusersnum'], [str(db_count(s))], rep)
        self.assertEqual(rep.fields['registeredusersnum'], [str(len(USERS) + len(ADMINS))], rep)

        rep = self.start_form(root, 'get-online-users-list')
        self.assertEqual(rep.field_types['max_items'], 'list-single', rep)
        rep = self.submit(root, 'get-online-users-list', field('max_items', '100'), sessionid=rep.sessionid)
        self.assertEqual(rep.fields['onlineuserjids'], sorted(jid(u) for u in ('alice', 'bob', 'dave', 'root')))
        self.assertEqual(rep.notes, [])
        rep = self.submit(root, 'get-online-users-list', field('max_items', '2'))
        self.assertEqual(len(rep.fields['onlineuserjids']), 2, rep)
        self.assert_note(rep, 'warn', '2 of 4')
        rep = self.submit(root, 'get-online-users-list', field('max_items', 'many'))
        self.assert_note(rep, 'error', 'max_items')

        # one goes away: counted no more
        clients['dave'].logout()
        deadline = time.monotonic() + TIMEOUT
        while self.ok(root, 'get-online-users-num').fields['onlineusersnum'] != ['3']:
            self.assertLess(time.monotonic(), deadline, 'dave still counted online')
            time.sleep(0.05)

    def test_announce(self):
        s = self.start()
        root = self.connect(s, 'root')
        alice = self.connect(s, 'alice')
        bob = self.connect(s, 'bob')
        bob2 = self.connect(s, 'bob', resource='tablet')
        rep = self.start_form(root, 'announce')
        self.assertIn('announcement', rep.required, rep)
        self.assertEqual(rep.field_types['announcement'], 'text-multi', rep)
        rep = self.submit(root, 'announce', field('subject', 'Maintenance'),
                          field('announcement', 'Down at 5 <UTC> & back', 'at 6.'), sessionid=rep.sessionid)
        self.assert_note(rep, 'info', 'sent to 4 session(s)')
        for c in (alice, bob, bob2, root):
            m = c.wait(lambda st: is_msg(st, type_='headline'), TIMEOUT, 'the announcement')
            self.assertEqual(m.get('from'), DOMAIN, to_str(m))
            self.assertEqual(m.get('to'), c.jid, to_str(m))
            self.assertEqual(m.findtext(q(NS_CLIENT, 'subject')), 'Maintenance')
            self.assertEqual(m.findtext(q(NS_CLIENT, 'body')), 'Down at 5 <UTC> & back\nat 6.')
        # an empty announcement is refused, and sent to nobody
        rep = self.submit(root, 'announce', field('announcement', ''))
        self.assert_note(rep, 'error', 'empty')
        alice.expect_none(lambda st: is_msg(st, type_='headline'), 'second announcement')

    def test_end_user_session(self):
        s = self.start()
        root = self.connect(s, 'root')
        dave = self.connect(s, 'dave', resource='desk')
        dave2 = self.connect(s, 'dave', resource='phone')
        alice = self.connect(s, 'alice')
        rep = self.submit(root, 'end-user-session', field('accountjids', jid('dave') + '/phone'))
        self.assert_note(rep, 'info', 'ending')
        self.wait_stream_error(dave2, 'policy-violation')
        dave.sync()  # the other resource stays
        rep = self.submit(root, 'end-user-session', field('accountjids', jid('dave')))
        self.wait_stream_error(dave, 'policy-violation')
        alice.sync()
        self.assertTrue(self.can_login(s, 'dave', USERS['dave']))


if __name__ == '__main__':
    main()
