"""Interop of PEP (XEP-0163 over XEP-0060) with Debian's python3-slixmpp (1.8.x), its xep_0060,
xep_0115, xep_0163 and xep_0118 plugins, as a client does it:

- entity capabilities: slixmpp advertises '+notify' features in its caps; hearthd asks its
  disco#info, checks slixmpp's own hash of it, and filters notifications by it;
- the OMEMO device-list flow (XEP-0384, as Conversations and Converse do it): the device list
  is published to eu.siacs.conversations.axolotl.devicelist and the bundle to
  eu.siacs.conversations.axolotl.bundles:<device> with publish-options access_model=open; a
  contact who is not subscribed to the publisher's presence fetches both; a subscribed contact
  with +notify gets the device list as a notification, and a resource that logs in later gets
  it as the last published item;
- User Tune (XEP-0118) through xep_0163's publish: the tune reaches a subscribed contact;
- User Avatar (XEP-0084) through xep_0084: the data and the metadata published, the metadata
  notified to a subscribed contact (xep_0084's own +notify) and sent as the last item to a
  contact's resource that comes later, the data fetched by the id the metadata names;
- private storage (XEP-0223) through xep_0223, as bookmarks (XEP-0402) use it: one item per room
  with the profile's publish-options, told to the owner's other resource, refused to a contact
  (closed-node), and the node configured to the profile with a form without FORM_TYPE, as
  xep_0223's configure builds it."""

import asyncio
import hashlib
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

AXOLOTL = 'eu.siacs.conversations.axolotl'
DEVICELIST = AXOLOTL + '.devicelist'
BUNDLES = AXOLOTL + '.bundles'
TUNE = 'http://jabber.org/protocol/tune'
AVATAR_DATA = 'urn:xmpp:avatar:data'
AVATAR_METADATA = 'urn:xmpp:avatar:metadata'
# A 1x1 PNG: what matters is that the bytes come back exactly.
AVATAR_PNG = bytes.fromhex('89504e470d0a1a0a0000000d4948445200000001000000010806000000'
                           '1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270ede0000000049454e44ae426082')
BOOKMARKS = 'urn:xmpp:bookmarks:1'
DEVICE = '31415'


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0118', 'xep_0203', 'xep_0084',
               'xep_0223')

    def __init__(self, jid, password, cafile, notify=(DEVICELIST,)):
        super().__init__(jid, password, cafile)
        self.notify = notify
        self.auto_authorize = True
        self.auto_subscribe = True
        self.events = asyncio.Queue()  # (node, item id, payload element or None)
        self.tunes = asyncio.Queue()
        self.avatars = asyncio.Queue()  # (publisher, metadata item id, <info/> attributes, delayed)
        self.add_event_handler('avatar_metadata_publish', self._on_avatar)
        self.add_event_handler('pubsub_publish', self._on_publish)
        self.add_event_handler('user_tune_publish',
                               lambda m: self.tunes.put_nowait(m['pubsub_event']['items']['item']['tune']))

    def _on_publish(self, msg):
        items = msg['pubsub_event']['items']
        item = items['item']
        self.events.put_nowait((items['node'], item['id'], item['payload'], msg['delay']['stamp']))

    def _on_avatar(self, msg):
        item = msg['pubsub_event']['items']['item']
        info = item['payload'].find('{%s}info' % AVATAR_METADATA)
        self.avatars.put_nowait((msg['from'].bare, item['id'], dict(info.attrib) if info is not None else None,
                                 bool(msg['delay']['stamp'])))

    async def setup_session(self):
        for node in self.notify:
            self['xep_0163'].add_interest(node)
        # The caps of the first presence must already carry the interests.
        await self['xep_0115'].update_caps(broadcast=False)
        await self.get_roster()
        self.send_presence()

    def publish_options(self, **fields):
        form = self['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', ftype='hidden',
                       value='http://jabber.org/protocol/pubsub#publish-options')
        for k, v in fields.items():
            form.add_field(var='pubsub#%s' % k, value=v)
        return form


def device_list(*ids):
    return ET.fromstring("<list xmlns='%s'>%s</list>" % (AXOLOTL, ''.join("<device id='%s'/>" % i for i in ids)))


def bundle():
    return ET.fromstring("<bundle xmlns='%s'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic>"
                         "<signedPreKeySignature>c2ln</signedPreKeySignature><identityKey>aWs=</identityKey>"
                         "<prekeys><preKeyPublic preKeyId='1'>cGs=</preKeyPublic></prekeys></bundle>" % AXOLOTL)


class SlixmppPepTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw', 'carol': 'carol-pw'}}
    timeout = 30

    def started(self, user, resource, **kw):
        b = self.bot(user, resource, **kw)
        self.connect(b)
        self.run_until(b.started)
        return b

    def no_event(self, bot, settle=1.0):
        """Nothing arrives: a ping round trip, then a short grace for what was in flight."""
        self.run_until(bot['xep_0030'].get_info(jid='localhost', timeout=10))
        self.run_until(asyncio.sleep(settle))
        self.assertTrue(bot.events.empty(), 'unexpected notification at %s' % bot.boundjid)

    def test_omemo_device_list_and_bundle(self):
        alice = self.started('alice', 'phone')
        bob = self.started('bob', 'laptop')
        carol = self.started('carol', 'desk')
        alice.send_presence_subscription(pto='bob@localhost')
        self.until(lambda: alice.client_roster['bob@localhost']['subscription'] == 'both'
                   and bob.client_roster['alice@localhost']['subscription'] == 'both', 'subscription both')

        # slixmpp sees PEP on its account.
        info = self.run_until(alice['xep_0030'].get_info(jid='alice@localhost'))
        self.assertIn(('pubsub', 'pep', None, None), info['disco_info']['identities'])
        self.assertIn('http://jabber.org/protocol/pubsub#publish-options', info['disco_info']['features'])

        # The device list and the bundle, readable by anyone.
        self.run_until(alice['xep_0060'].publish(None, DEVICELIST, id='current', payload=device_list(DEVICE),
                                                 options=alice.publish_options(access_model='open')))
        self.run_until(alice['xep_0060'].publish(None, '%s:%s' % (BUNDLES, DEVICE), id='current', payload=bundle(),
                                                 options=alice.publish_options(access_model='open')))

        # Bob (subscribed, +notify) is told; carol (not subscribed) is not, but may fetch both.
        node, item_id, payload, _ = self.run_until(bob.events.get())
        self.assertEqual((node, item_id), (DEVICELIST, 'current'))
        self.assertEqual([d.get('id') for d in payload.iter('{%s}device' % AXOLOTL)], [DEVICE])
        r = self.run_until(carol['xep_0060'].get_items('alice@localhost', DEVICELIST))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], ['current'])
        r = self.run_until(carol['xep_0060'].get_items('alice@localhost', '%s:%s' % (BUNDLES, DEVICE),
                                                       max_items=1))
        items = list(r['pubsub']['items'])
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0]['payload'].tag, '{%s}bundle' % AXOLOTL)
        self.no_event(carol)

        # Publishing again with the same options: the precondition holds.
        self.run_until(alice['xep_0060'].publish(None, DEVICELIST, id='current', payload=device_list(DEVICE, '2718'),
                                                 options=alice.publish_options(access_model='open')))
        node, _, payload, _ = self.run_until(bob.events.get())
        self.assertEqual(sorted(d.get('id') for d in payload.iter('{%s}device' % AXOLOTL)), ['2718', DEVICE])

        # Bob's second client, later: the last device list, with its delay.
        bob2 = self.started('bob', 'tablet')
        node, item_id, payload, stamp = self.run_until(bob2.events.get())
        self.assertEqual((node, item_id), (DEVICELIST, 'current'))
        self.assertIsNotNone(stamp)
        self.assertEqual(len(list(payload.iter('{%s}device' % AXOLOTL))), 2)
        # slixmpp's caps hashes were checked against its disco#info and found right.
        log = self.s.current_log()
        self.assertNotIn('does not match its disco#info', log)
        self.assertNotIn('ill-formed', log)

    def test_user_tune_through_xep_0163(self):
        alice = self.started('alice', 'phone', notify=())
        bob = self.started('bob', 'laptop', notify=())  # xep_0118 registers the tune interest
        alice.send_presence_subscription(pto='bob@localhost')
        self.until(lambda: alice.client_roster['bob@localhost']['subscription'] == 'both', 'subscription both')
        self.run_until(alice['xep_0118'].publish_tune(artist='Gerald Finzi', title='Introduction', length=255))
        tune = self.run_until(bob.tunes.get())
        self.assertEqual((tune['artist'], tune['title'], tune['length']), ('Gerald Finzi', 'Introduction', '255'))
        r = self.run_until(bob['xep_0060'].get_items('alice@localhost', TUNE))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], ['current'])

    def test_user_avatar_through_xep_0084(self):
        alice = self.started('alice', 'phone', notify=())
        bob = self.started('bob', 'laptop', notify=())  # xep_0084 registers the metadata interest
        alice.send_presence_subscription(pto='bob@localhost')
        self.until(lambda: alice.client_roster['bob@localhost']['subscription'] == 'both'
                   and bob.client_roster['alice@localhost']['subscription'] == 'both', 'subscription both')
        avatar_id = hashlib.sha1(AVATAR_PNG).hexdigest()
        # XEP-0084 4.1-4.2: the data first, then the metadata naming it.
        self.run_until(alice['xep_0084'].publish_avatar(AVATAR_PNG))
        self.run_until(alice['xep_0084'].publish_avatar_metadata(
            {'id': avatar_id, 'type': 'image/png', 'bytes': len(AVATAR_PNG), 'width': '1', 'height': '1'}))
        publisher, item_id, info, delayed = self.run_until(bob.avatars.get())
        self.assertEqual((publisher, item_id, delayed), ('alice@localhost', avatar_id, False))
        self.assertEqual((info['id'], info['type'], info['bytes']), (avatar_id, 'image/png', str(len(AVATAR_PNG))))
        # The data is fetched by the id the metadata names (4.3); nobody was notified of it.
        r = self.run_until(bob['xep_0084'].retrieve_avatar('alice@localhost', avatar_id))
        self.assertEqual(r['pubsub']['items']['item']['avatar_data']['value'], AVATAR_PNG)
        # Bob's other client, later: the metadata as the last published item.
        bob2 = self.started('bob', 'tablet', notify=())
        publisher, item_id, _, delayed = self.run_until(bob2.avatars.get())
        self.assertEqual((publisher, item_id, delayed), ('alice@localhost', avatar_id, True))
        pushed = []
        for q in (bob.events, bob2.events):
            while not q.empty():
                pushed.append(q.get_nowait()[0])
        self.assertNotIn(AVATAR_DATA, pushed)  # nobody asked for the data node's notifications
        self.assertIn(AVATAR_METADATA, pushed)

    def test_private_bookmarks_through_xep_0223(self):
        phone = self.started('alice', 'phone', notify=(BOOKMARKS,))
        laptop = self.started('alice', 'laptop', notify=(BOOKMARKS,))
        bob = self.started('bob', 'desk', notify=(BOOKMARKS,))
        phone.send_presence_subscription(pto='bob@localhost')
        self.until(lambda: phone.client_roster['bob@localhost']['subscription'] == 'both', 'subscription both')
        room = 'orchard@conference.localhost'
        conference = types.SimpleNamespace(xml=ET.fromstring(
            "<conference xmlns='%s' name='The Orchard' autojoin='true'><nick>al</nick></conference>" % BOOKMARKS))
        # xep_0223 adds its profile (persist_items, access_model whitelist) to the options.
        self.run_until(phone['xep_0223'].store(conference, node=BOOKMARKS, id=room, options=phone.publish_options(
            max_items='max', send_last_published_item='never')))
        node, item_id, payload, _ = self.run_until(laptop.events.get())
        self.assertEqual((node, item_id, payload.get('name')), (BOOKMARKS, room, 'The Orchard'))
        r = self.run_until(laptop['xep_0223'].retrieve(BOOKMARKS))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], [room])
        with self.assertRaises(slixmpp.exceptions.IqError) as cm:
            self.run_until(bob['xep_0060'].get_items('alice@localhost', BOOKMARKS))
        self.assertEqual(cm.exception.condition, 'not-allowed')
        self.no_event(bob)
        # The profile applied to the node as xep_0223's configure would send it, a form without
        # FORM_TYPE (that method itself fails in slixmpp 1.8: it calls xep_0004.Form, which
        # does not exist).
        form = laptop['xep_0004'].make_form(ftype='submit')
        for var, value in laptop['xep_0223'].profile.items():
            form.add_field(var=var, value=value)
        self.run_until(laptop['xep_0060'].set_node_config(None, BOOKMARKS, form))
        config = self.run_until(laptop['xep_0060'].get_node_config(None, BOOKMARKS))
        fields = config['pubsub_owner']['configure']['form'].get_fields()
        self.assertEqual((fields['pubsub#access_model']['value'], fields['pubsub#max_items']['value']),
                         ('whitelist', 'max'))


if __name__ == '__main__':
    main()
