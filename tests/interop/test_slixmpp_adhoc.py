"""Interop of the server's ad-hoc administration commands (XEP-0050, XEP-0133) with Debian's
python3-slixmpp (1.8.x): its xep_0133 plugin lists the commands (disco#items of the commands
node) and starts add-user, get-online-users-num and get-online-users-list; its xep_0050
workflow (the session's next and error handlers, complete_command) fills and submits each form.
The account added is then used by another slixmpp client, which the online list shows. A
non-admin sees no commands and gets forbidden."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

if slixmpp is not None:
    import slixmpp.exceptions  # noqa: E402

NS_ADMIN = 'http://jabber.org/protocol/admin'


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0050', 'xep_0133')

    def setup_session(self):
        self.send_presence()


class SlixmppAdhocTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw'}, 'admins': {'root': 'root-pw'}}

    def started(self, user, resource, password=None):
        b = self.bot(user, resource, password=password)
        self.connect(b)
        self.run_until(b.started)
        return b

    def command(self, bot, name, values=None):
        """Runs XEP-0133's command name through xep_0133 and xep_0050's workflow: the form
        (when the command has one) gets values; returns (the form asked, the completed IQ)."""
        done = self.loop.create_future()
        asked = []

        def on_error(iq, session):
            if not done.done():
                done.set_exception(AssertionError('%s failed: %s' % (name, iq)))

        def on_done(iq, session):
            if not done.done():
                done.set_result(iq)

        def on_form(iq, session):
            if iq['command']['status'] == 'completed':
                on_done(iq, session)
                return
            form = iq['command']['form']
            asked.append(form)
            answer = bot['xep_0004'].make_form(ftype='submit')
            answer.add_field(var='FORM_TYPE', ftype='hidden', value=NS_ADMIN)
            for var, value in (values or {}).items():
                answer.add_field(var=var, value=value)
            session['payload'] = answer
            session['next'] = on_done
            bot['xep_0050'].complete_command(session)

        getattr(bot['xep_0133'], name.replace('-', '_'))(session={'next': on_form, 'error': on_error})
        iq = self.run_until(done)
        self.assertEqual(iq['command']['status'], 'completed', str(iq))
        return (asked[0] if asked else None), iq

    def test_admin_adds_a_user_and_lists_online_users(self):
        root = self.started('root', 'console', 'root-pw')
        items = self.run_until(root['xep_0133'].get_commands(timeout=10))['disco_items']['items']
        nodes = {node for _, node, _ in items}
        for name in ('add-user', 'delete-user', 'change-user-password', 'get-online-users-num',
                     'get-online-users-list', 'get-registered-users-num', 'announce'):
            self.assertIn('%s#%s' % (NS_ADMIN, name), nodes)

        form, iq = self.command(root, 'add-user', {'accountjid': 'erin@localhost',
                                                   'password': 'erin-pw',
                                                   'password-verify': 'erin-pw'})
        fields = form.get_fields()
        self.assertEqual(set(fields) - {'FORM_TYPE'}, {'accountjid', 'password', 'password-verify'})
        self.assertEqual(fields['password']['type'], 'text-private')
        notes = iq['command']['notes']
        self.assertEqual([t for t, _ in notes], ['info'], str(iq))

        # the new account works for another slixmpp client
        erin = self.started('erin', 'laptop', 'erin-pw')
        self.assertEqual(erin.boundjid.bare, 'erin@localhost')

        _, iq = self.command(root, 'get-online-users-num')
        self.assertEqual(iq['command']['form']['values']['onlineusersnum'], '2', str(iq))
        form, iq = self.command(root, 'get-online-users-list', {'max_items': '100'})
        self.assertIn('max_items', form.get_fields())
        self.assertEqual(sorted(iq['command']['form']['values']['onlineuserjids']),
                         ['erin@localhost', 'root@localhost'], str(iq))
        _, iq = self.command(root, 'get-registered-users-num')
        self.assertEqual(iq['command']['form']['values']['registeredusersnum'], '3', str(iq))

    def test_non_admin_sees_nothing_and_is_refused(self):
        alice = self.started('alice', 'phone')
        items = self.run_until(alice['xep_0133'].get_commands(timeout=10))['disco_items']['items']
        self.assertEqual(list(items), [])
        with self.assertRaises(slixmpp.exceptions.IqError) as cm:
            self.run_until(alice['xep_0050'].send_command(
                'localhost', '%s#get-online-users-num' % NS_ADMIN, timeout=10))
        self.assertEqual(cm.exception.iq['error']['condition'], 'forbidden')


if __name__ == '__main__':
    main()
