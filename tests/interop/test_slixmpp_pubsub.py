"""Interop of the pubsub service (XEP-0060 at pubsub.localhost) with Debian's python3-slixmpp
(1.8.x) and its xep_0060 plugin, as a client of a news feed does it: the owner finds the service
in the server's disco#items, creates a node with a configuration form, makes a publisher;
a subscriber subscribes, gets each published item and the retraction, purge and deletion
notifications as slixmpp's events; items, subscriptions and affiliations are read through the
plugin; an outsider's publish is refused with the XEP's error."""

import asyncio
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

PS = 'pubsub.localhost'
ENTRY = 'urn:example:entry'


def entry(text):
    return ET.fromstring("<entry xmlns='%s'>%s</entry>" % (ENTRY, text))


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0203')

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self.events = asyncio.Queue()  # (kind, node, item id or None, payload text or None)
        self.add_event_handler('pubsub_publish', self._on_publish)
        self.add_event_handler('pubsub_retract', lambda m: self.events.put_nowait(
            ('retract', m['pubsub_event']['items']['node'], m['pubsub_event']['items']['retract']['id'], None)))
        self.add_event_handler('pubsub_purge', lambda m: self.events.put_nowait(
            ('purge', m['pubsub_event']['purge']['node'], None, None)))
        self.add_event_handler('pubsub_delete', lambda m: self.events.put_nowait(
            ('delete', m['pubsub_event']['delete']['node'], None, None)))

    def setup_session(self):
        # Available: notifications to a bare JID go to its available resources (RFC 6121 8.5.2).
        self.send_presence()

    def _on_publish(self, msg):
        items = msg['pubsub_event']['items']
        item = items['item']
        payload = item['payload']
        self.events.put_nowait(('publish', items['node'], item['id'], payload.text if payload is not None else None))

    def config_form(self, **fields):
        form = self['xep_0004'].make_form(ftype='submit')
        for k, v in fields.items():
            form.add_field(var='pubsub#%s' % k, value=v)
        return form


class SlixmppPubsubTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw', 'carol': 'carol-pw', 'eve': 'eve-pw'}}
    timeout = 30

    def started(self, user, resource):
        b = self.bot(user, resource)
        self.connect(b)
        self.run_until(b.started)
        return b

    def test_news_feed(self):
        alice = self.started('alice', 'desk')
        bob = self.started('bob', 'laptop')
        carol = self.started('carol', 'phone')
        eve = self.started('eve', 'pc')

        # The service, found where clients look for it.
        items = self.run_until(alice['xep_0030'].get_items(jid='localhost'))
        self.assertIn(PS, [i[0] for i in items['disco_items']['items']])
        info = self.run_until(alice['xep_0030'].get_info(jid=PS))
        self.assertIn(('pubsub', 'service', None, 'Publish-Subscribe'), info['disco_info']['identities'])
        self.assertIn('http://jabber.org/protocol/pubsub#subscribe', info['disco_info']['features'])

        self.run_until(alice['xep_0060'].create_node(PS, 'news', config=alice.config_form(
            max_items='10', title='News', notify_retract='1')))
        self.run_until(alice['xep_0060'].modify_affiliations(PS, 'news', [('bob@localhost', 'publisher')]))
        affs = self.run_until(alice['xep_0060'].get_node_affiliations(PS, 'news'))
        self.assertEqual(sorted((a['jid'].bare, a['affiliation']) for a in affs['pubsub_owner']['affiliations']),
                         [('alice@localhost', 'owner'), ('bob@localhost', 'publisher')])

        r = self.run_until(carol['xep_0060'].subscribe(PS, 'news'))
        self.assertEqual(r['pubsub']['subscription']['subscription'], 'subscribed')
        subs = self.run_until(carol['xep_0060'].get_subscriptions(PS))
        self.assertEqual([(s['node'], s['jid'].bare) for s in subs['pubsub']['subscriptions']],
                         [('news', 'carol@localhost')])
        affs = self.run_until(bob['xep_0060'].get_affiliations(PS))
        self.assertEqual([(a['node'], a['affiliation']) for a in affs['pubsub']['affiliations']],
                         [('news', 'publisher')])

        self.run_until(bob['xep_0060'].publish(PS, 'news', id='first', payload=entry('hello')))
        self.assertEqual(self.run_until(carol.events.get()), ('publish', 'news', 'first', 'hello'))
        self.run_until(alice['xep_0060'].publish(PS, 'news', id='second', payload=entry('world')))
        self.assertEqual(self.run_until(carol.events.get()), ('publish', 'news', 'second', 'world'))

        with self.assertRaises(slixmpp.exceptions.IqError) as cm:
            self.run_until(eve['xep_0060'].publish(PS, 'news', id='spam', payload=entry('spam')))
        self.assertEqual(cm.exception.condition, 'forbidden')

        r = self.run_until(eve['xep_0060'].get_items(PS, 'news'))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], ['first', 'second'])
        r = self.run_until(eve['xep_0060'].get_items(PS, 'news', max_items=1))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], ['second'])

        self.run_until(alice['xep_0060'].retract(PS, 'news', 'first'))
        self.assertEqual(self.run_until(carol.events.get()), ('retract', 'news', 'first', None))
        self.run_until(alice['xep_0060'].purge(PS, 'news'))
        self.assertEqual(self.run_until(carol.events.get()), ('purge', 'news', None, None))
        r = self.run_until(carol['xep_0060'].get_items(PS, 'news'))
        self.assertEqual(list(r['pubsub']['items']), [])

        self.run_until(carol['xep_0060'].unsubscribe(PS, 'news'))
        subs = self.run_until(alice['xep_0060'].get_node_subscriptions(PS, 'news'))
        self.assertEqual(list(subs['pubsub_owner']['subscriptions']), [])
        self.run_until(bob['xep_0060'].subscribe(PS, 'news'))
        self.run_until(alice['xep_0060'].delete_node(PS, 'news'))
        self.assertEqual(self.run_until(bob.events.get()), ('delete', 'news', None, None))
        with self.assertRaises(slixmpp.exceptions.IqError) as cm:
            self.run_until(carol['xep_0060'].get_items(PS, 'news'))
        self.assertEqual(cm.exception.condition, 'item-not-found')


if __name__ == '__main__':
    main()
